namespace Vessel.Integration.Tests.Infrastructure;

/// <summary>A private podman (Debian's package) for one test class: its own storage (--root, --runroot, --tmpdir
/// under /tmp/vessel-test-podman-*), cgroupfs under its own cgroup parent, file events, and a containers.conf
/// (CONTAINERS_CONF) that names vessel-runc as a runtime that writes JSON logs, as docs/kubernetes.md shows.
/// Dispose removes every container, resets the store and checks nothing is left.</summary>
public sealed class PodmanFixture : IDisposable
{
    public const string Image = "localhost/busybox:test";
    public string Dir { get; }
    /// <summary>Every container's cgroup is /CgroupParent/libpod-ID.</summary>
    public string CgroupParent { get; }
    private readonly Dictionary<string, string> _env;
    private readonly string[] _global;

    public PodmanFixture(IntegrationEnvironment env)
    {
        Dir = TempDirs.Create("podman");
        CgroupParent = "vessel-test-" + Path.GetFileName(Dir)["vessel-test-".Length..];
        var conf = Path.Combine(Dir, "containers.conf");
        File.WriteAllText(conf, $"""
            [containers]
            default_ulimits = ["nofile=1024:1024", "nproc=32768:32768"]
            [engine]
            cgroup_manager = "cgroupfs"
            events_logger = "file"
            runtime_supports_json = ["vessel-runc", "crun", "runc"]
            [engine.runtimes]
            vessel-runc = ["{env.VesselRunc}"]
            runc = ["/usr/bin/runc"]
            """);
        _env = new() { ["CONTAINERS_CONF"] = conf };
        _global =
        [
            "--root", Path.Combine(Dir, "root"), "--runroot", Path.Combine(Dir, "runroot"), "--tmpdir", Path.Combine(Dir, "tmp"),
            "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
        ];
        Run("import", env.RootfsTar, Image).Ok();
    }

    public ToolResult Run(params string[] args) => Tool.Run("/usr/bin/podman", [.. _global, .. args], env: _env);

    public ToolResult RunWithStdin(string stdin, params string[] args) => Tool.Run("/usr/bin/podman", [.. _global, .. args], stdin: stdin, env: _env);

    public ToolResult OnPty(params string[] args) => Tool.OnPty(["/usr/bin/podman", .. _global, .. args], _env);

    /// <summary>The flags every scenario's container gets: the runtime under test, no network, our cgroup parent.</summary>
    public string[] RunFlags(string runtime) => ["--runtime", runtime, "--network", "none", "--cgroup-parent", "/" + CgroupParent];

    public string CgroupOf(string container) => $"/{CgroupParent}/libpod-{Run("inspect", "-f", "{{.Id}}", container).Ok().Stdout.Trim()}";

    public string Status(string container) => Run("inspect", "-f", "{{.State.Status}}", container).Ok().Stdout.Trim();

    public void Dispose()
    {
        Run("rm", "--all", "--force", "--time", "0");
        Run("system", "reset", "--force");
        HostCgroup.RemoveTree(CgroupParent);
        var cgroups = HostCgroup.Left(CgroupParent);
        var mounts = TempDirs.MountsUnder(Dir);
        TempDirs.Delete(Dir);
        if (cgroups.Count > 0 || mounts.Count > 0)
            throw new InvalidOperationException($"podman left behind: {string.Join(", ", cgroups.Concat(mounts))}");
    }
}
