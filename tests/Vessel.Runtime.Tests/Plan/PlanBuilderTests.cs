using System.Text.Json;
using Vessel.Runtime.Plan;
using Vessel.Runtime.Spec;

namespace Vessel.Runtime.Tests.Plan;

/// <summary>Validation and translation of config.json, without running anything.</summary>
public sealed class PlanBuilderTests : IDisposable
{
    private readonly string _bundle = Directory.CreateTempSubdirectory("vessel-test-plan").FullName;

    public PlanBuilderTests() => Directory.CreateDirectory(Path.Combine(_bundle, "rootfs"));

    public void Dispose() => Directory.Delete(_bundle, recursive: true);

    private static RuntimeSpec Spec(string json = "") => JsonSerializer.Deserialize($$"""
        {
          "ociVersion": "1.0.2",
          "process": { "args": ["/bin/true"], "cwd": "/", "user": { "uid": 0, "gid": 0 } },
          "root": { "path": "rootfs" },
          "hostname": "box",
          "mounts": [ { "destination": "/proc", "type": "proc", "source": "proc" } ],
          "linux": { "namespaces": [ { "type": "pid" }, { "type": "mount" }, { "type": "uts" } ] {{json}} }
        }
        """, RuntimeJson.Default.RuntimeSpec)!;

    private PlannedContainer Build(RuntimeSpec spec) =>
        PlanBuilder.ForInit(spec, _bundle, new ExecutorFds(0, false, true), new CgroupView(false, []), noPivot: false);

    [Fact]
    public void A_valid_spec_gives_a_plan_with_the_new_namespaces()
    {
        var plan = Build(Spec());
        Assert.False(plan.NewUserNamespace);
        var records = PlanReader.Read(plan.Plan);
        var clone = records.Single(r => r.Type == PlanRecord.CloneFlags);
        Assert.Equal(Namespaces.NewPid | Namespaces.NewNs | Namespaces.NewUts, BitConverter.ToUInt64(clone.Payload));
        Assert.Contains(records, r => r.Type == PlanRecord.Hostname);
        Assert.Contains(records, r => r.Type == PlanRecord.FifoFd);
    }

    [Theory]
    [InlineData("""{ "type": "bogus" }""", "linux.namespaces[3].type")]
    [InlineData("""{ "type": "pid" }""", "linux.namespaces[3].type")]
    public void Bad_namespaces_name_the_field(string extra, string field)
    {
        var spec = Spec();
        spec.Linux!.Namespaces!.Add(JsonSerializer.Deserialize(extra, RuntimeJson.Default.NamespaceSpec)!);
        Assert.Equal(field, Assert.Throws<SpecException>(() => Build(spec)).Field);
    }

    [Fact]
    public void Hostname_without_a_uts_namespace_is_refused()
    {
        var spec = Spec();
        spec.Linux!.Namespaces!.RemoveAll(n => n.Type == "uts");
        Assert.Equal("hostname", Assert.Throws<SpecException>(() => Build(spec)).Field);
    }

    [Fact]
    public void Missing_rootfs_is_refused()
    {
        var spec = Spec();
        spec.Root!.Path = "nope";
        var e = Assert.Throws<SpecException>(() => Build(spec));
        Assert.Equal("root.path", e.Field);
        Assert.Contains("does not exist", e.Message);
    }

    [Fact]
    public void Systemd_cgroup_paths_get_a_clear_error()
    {
        var spec = Spec();
        spec.Linux!.CgroupsPath = "system.slice:vessel:abc";
        Assert.Contains("systemd", Assert.Throws<SpecException>(() => Build(spec)).Message);
    }

    [Fact]
    public void Sysctls_need_their_namespace()
    {
        var spec = Spec();
        spec.Linux!.Sysctl = new() { ["net.ipv4.ip_forward"] = "1" };
        Assert.Contains("network namespace", Assert.Throws<SpecException>(() => Build(spec)).Message);
        spec.Linux.Sysctl = new() { ["kernel.panic"] = "1" };
        Assert.Contains("not a namespaced sysctl", Assert.Throws<SpecException>(() => Build(spec)).Message);
    }

    [Fact]
    public void Ambient_capabilities_outside_permitted_and_inheritable_are_dropped_with_a_warning()
    {
        var spec = Spec();
        spec.Process!.Capabilities = new CapabilitiesSpec { Permitted = ["CAP_KILL"], Inheritable = ["CAP_KILL"], Ambient = ["CAP_KILL", "CAP_CHOWN"] };
        var warnings = new List<string>();
        var plan = PlanBuilder.ForInit(spec, _bundle, new ExecutorFds(0, false, true), new CgroupView(false, []), false, warnings.Add);
        var caps = PlanReader.Read(plan.Plan).Single(r => r.Type == PlanRecord.Capabilities).Payload;
        Assert.Equal(1UL << 5, BitConverter.ToUInt64(caps, 32)); // ambient: CAP_KILL only
        Assert.Contains(warnings, w => w.Contains("CAP_CHOWN"));
    }

    [Fact]
    public void A_cgroup_mount_on_v1_becomes_a_tmpfs_with_each_hierarchy_bound_in()
    {
        var spec = Spec();
        spec.Mounts!.Add(new MountSpec { Destination = "/sys/fs/cgroup", Type = "cgroup", Source = "cgroup", Options = ["ro", "nosuid"] });
        var plan = PlanBuilder.ForInit(spec, _bundle, new ExecutorFds(0, false, true),
            new CgroupView(false, [("memory", "/sys/fs/cgroup/memory/x"), ("pids", "/sys/fs/cgroup/pids/x")]), false);
        var mounts = PlanReader.Read(plan.Plan).Where(r => r.Type == PlanRecord.Mount).Select(r => r.Strings()).ToList();
        Assert.Contains(mounts, m => m[1] == "/sys/fs/cgroup" && m[2] == "tmpfs");
        Assert.Contains(mounts, m => m[0] == "/sys/fs/cgroup/memory/x" && m[1] == "/sys/fs/cgroup/memory");
        Assert.Contains(mounts, m => m[0] == "/sys/fs/cgroup/pids/x" && m[1] == "/sys/fs/cgroup/pids");
    }
}

/// <summary>Reads plans back, for tests only.</summary>
internal static class PlanReader
{
    public sealed record Rec(PlanRecord Type, byte[] Payload)
    {
        /// <summary>The NUL-terminated strings after a mount record's 24 bytes of integers.</summary>
        public List<string> Strings(int skip = 24) =>
            System.Text.Encoding.UTF8.GetString(Payload, skip, Payload.Length - skip).TrimEnd('\0').Split('\0').ToList();
    }

    public static List<Rec> Read(byte[] plan)
    {
        var list = new List<Rec>();
        var at = 8;
        while (at < plan.Length)
        {
            var type = (PlanRecord)BitConverter.ToUInt16(plan, at);
            var length = (int)BitConverter.ToUInt32(plan, at + 4);
            list.Add(new Rec(type, plan[(at + 8)..(at + 8 + length)]));
            at += 8 + (length + 7) / 8 * 8;
        }
        return list;
    }
}
