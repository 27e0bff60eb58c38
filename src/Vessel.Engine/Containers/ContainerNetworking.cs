using System.Text.Json;
using Vessel.Api;
using Vessel.Engine.Networks;
using Vessel.Runtime;
using Vessel.Runtime.Spec;

namespace Vessel.Engine.Containers;

/// <summary>The network side of starting a container (the rest is in <see cref="NetworkService"/>).</summary>
public sealed partial class ContainerService
{
    /// <summary>Before the runtime creates the init: `--network container:ID` joins that container's current
    /// namespace (its init's pid changes with every start, so config.json is updated here) and takes its hosts and
    /// resolv.conf; published host ports are held (a taken one fails the start here, before anything runs).</summary>
    private void PrepareNetwork(ContainerRecord c)
    {
        string? mode = _network.ModeOf(c.Id);
        if (mode is not null && mode.StartsWith("container:", StringComparison.Ordinal))
        {
            var other = Find(mode["container:".Length..]) ?? throw EngineException.Conflict($"cannot join the network of container {mode[10..][..12]}: it no longer exists");
            if (other.State.Status != ContainerStatus.Running)
                throw EngineException.Conflict($"cannot join network of a non running container: {other.Name}");
            string config = Path.Combine(DirOf(c.Id), "config.json");
            RuntimeSpec spec = JsonSerializer.Deserialize(File.ReadAllText(config), RuntimeJson.Indented.RuntimeSpec)!;
            foreach (var ns in spec.Linux!.Namespaces ?? []) if (ns.Type == "network") ns.Path = $"/proc/{other.State.Pid}/ns/net";
            File.WriteAllText(config, JsonSerializer.Serialize(spec, RuntimeJson.Indented.RuntimeSpec));
            NetworkService.CopyIdentity(DirOf(other.Id), DirOf(c.Id));
        }
        _network.BeforeStart(c.Id);
    }
}
