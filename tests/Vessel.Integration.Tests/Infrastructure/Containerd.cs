using System.Diagnostics;

namespace Vessel.Integration.Tests.Infrastructure;

/// <summary>A private containerd (Debian's package) for one test class: its own root, state and sockets under
/// /tmp/vessel-test-ctd-*, the CRI plugin disabled, the busybox image imported into namespace vessel-test-*.
/// Containers run on the runc v2 shim with `--runc-binary` set to the runtime under test (what
/// `BinaryName` does for the CRI plugin, docs/kubernetes.md). Dispose kills the daemon and its shims (by pid),
/// unmounts and removes everything and checks nothing is left.</summary>
public sealed class ContainerdFixture : IDisposable
{
    public const string Image = "localhost/busybox:test";
    public string Dir { get; }
    public string Namespace { get; }
    public string Socket => Path.Combine(Dir, "containerd.sock");
    public string RuncRoot => Path.Combine(Dir, "runc-root");
    private readonly IntegrationEnvironment _env;
    private readonly Process _daemon;

    public ContainerdFixture(IntegrationEnvironment env)
    {
        _env = env;
        Dir = TempDirs.Create("ctd");
        Namespace = "vessel-test-" + Path.GetFileName(Dir)["vessel-test-ctd-".Length..];
        var config = Path.Combine(Dir, "config.toml");
        File.WriteAllText(config, $"""
            version = 2
            root = "{Dir}/root"
            state = "{Dir}/state"
            disabled_plugins = ["io.containerd.grpc.v1.cri"]
            [grpc]
              address = "{Socket}"
            [ttrpc]
              address = "{Socket}.ttrpc"
            [debug]
              address = "{Dir}/debug.sock"
            """);
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        foreach (var a in new[] { "-c", "exec /usr/bin/containerd --config \"$1\" >\"$2\" 2>&1", "sh", config, Path.Combine(Dir, "containerd.log") })
            psi.ArgumentList.Add(a);
        _daemon = Process.Start(psi)!;
        Tool.Eventually(() => _daemon.HasExited || Ctr("version").ExitCode == 0, "containerd to serve");
        if (_daemon.HasExited) throw new InvalidOperationException($"containerd exited: {File.ReadAllText(Path.Combine(Dir, "containerd.log"))}");
        Ctr("images", "import", "--base-name", "localhost/busybox", MakeArchive()).Ok();
    }

    /// <summary>An OCI archive of the busybox rootfs, written by a throwaway podman store (no registry here).</summary>
    private string MakeArchive()
    {
        var store = Path.Combine(Dir, "podman");
        var archive = Path.Combine(Dir, "busybox-oci.tar");
        string[] g = ["--root", Path.Combine(store, "root"), "--runroot", Path.Combine(store, "runroot"), "--tmpdir", Path.Combine(store, "tmp"), "--storage-driver", "vfs"];
        Tool.Run("/usr/bin/podman", [.. g, "import", _env.RootfsTar, Image]).Ok();
        Tool.Run("/usr/bin/podman", [.. g, "save", "--format", "oci-archive", "-o", archive, Image]).Ok();
        Tool.Run("/usr/bin/podman", [.. g, "system", "reset", "--force"]);
        TempDirs.Delete(store);
        return archive;
    }

    public ToolResult Ctr(params string[] args) => Tool.Run("/usr/bin/ctr", ["-a", Socket, "-n", Namespace, .. args]);

    public ToolResult CtrOnPty(params string[] args) => Tool.OnPty(["/usr/bin/ctr", "-a", Socket, "-n", Namespace, .. args]);

    /// <summary>`ctr run` flags selecting the runtime under test on the runc v2 shim.</summary>
    public string[] RuntimeFlags(string runtime) => ["--runc-binary", _env.RuntimePath(runtime), "--runc-root", RuncRoot];

    /// <summary>The cgroup ctr gives a container by default.</summary>
    public string CgroupOf(string id) => $"/{Namespace}/{id}";

    /// <summary>The task's status column in `ctr task ls` (RUNNING, PAUSED, STOPPED), or "" without a task.</summary>
    public string TaskStatus(string id) =>
        Ctr("task", "ls").Ok().Stdout.Split('\n').Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .FirstOrDefault(f => f.Length >= 3 && f[0] == id)?[2] ?? "";

    /// <summary>Kills and removes a container's task and the container (ignoring what is already gone).</summary>
    public void Remove(string id)
    {
        Ctr("task", "kill", "--all", "--signal", "SIGKILL", id);
        Tool.Eventually(() => TaskStatus(id) is "" or "STOPPED", $"task {id} to stop");
        Ctr("task", "rm", "--force", id);
        Ctr("containers", "rm", id);
    }

    public void Dispose()
    {
        foreach (var id in Ctr("containers", "ls", "-q").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)) Remove(id);
        var shims = Shims();
        if (!_daemon.HasExited)
        {
            _daemon.Kill(); // SIGKILL: containerd holds nothing we need on the way out
            _daemon.WaitForExit();
        }
        foreach (var pid in shims.Concat(Shims()).Distinct())
        {
            try { Process.GetProcessById(pid).Kill(); } catch (ArgumentException) { } catch (InvalidOperationException) { }
        }
        HostCgroup.RemoveTree(Namespace);
        var cgroups = HostCgroup.Left(Namespace);
        var mounts = TempDirs.MountsUnder(Dir);
        TempDirs.Delete(Dir);
        if (cgroups.Count > 0 || mounts.Count > 0)
            throw new InvalidOperationException($"containerd left behind: {string.Join(", ", cgroups.Concat(mounts))}");
    }

    /// <summary>Pids of the shims this daemon started (their command line carries our socket address).</summary>
    private List<int> Shims()
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline"));
                if (cmdline.Contains("containerd-shim", StringComparison.Ordinal) && cmdline.Contains(Socket, StringComparison.Ordinal)) found.Add(pid);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return found;
    }
}
