using Vessel.Runtime.Spec;

namespace Vessel.Runtime.Plan;

/// <summary>The device cgroup rules a container gets, as runc composes them: the spec's own rules (usually
/// "deny all"), then the devices every container needs, then the devices the spec creates in linux.devices.</summary>
public static class DeviceRules
{
    private static readonly (string Type, long? Major, long? Minor)[] Defaults =
    [
        ("c", null, null), ("b", null, null),  // mknod of anything (access "m" only)
        ("c", 1, 3), ("c", 1, 5), ("c", 1, 7), ("c", 1, 8), ("c", 1, 9), // null zero full random urandom
        ("c", 5, 0), ("c", 5, 1), ("c", 5, 2), ("c", 136, null),          // tty console ptmx pts/*
        ("c", 10, 200),                                                    // net/tun
    ];

    public static LinuxResources Effective(RuntimeSpec spec)
    {
        var given = spec.Linux?.Resources;
        var resources = given is null ? new LinuxResources() : Copy(given);
        var rules = resources.Devices ?? [];
        foreach (var (type, major, minor) in Defaults)
            rules.Add(new LinuxDeviceCgroup { Allow = true, Type = type, Major = major, Minor = minor, Access = major is null && minor is null ? "m" : "rwm" });
        foreach (var d in (spec.Linux?.Devices ?? []).Where(d => d.Type != "p")) // fifos need no device permission
            rules.Add(new LinuxDeviceCgroup { Allow = true, Type = d.Type == "u" ? "c" : d.Type, Major = d.Major, Minor = d.Minor, Access = "rwm" });
        resources.Devices = rules;
        return resources;
    }

    private static LinuxResources Copy(LinuxResources r) =>
        System.Text.Json.JsonSerializer.Deserialize(System.Text.Json.JsonSerializer.Serialize(r, RuntimeJson.Default.LinuxResources), RuntimeJson.Default.LinuxResources)!;
}
