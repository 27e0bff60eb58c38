using System.Diagnostics;
using System.Runtime.InteropServices;

[assembly: AssemblyFixture(typeof(Vessel.Integration.Tests.Infrastructure.IntegrationEnvironment))]

namespace Vessel.Integration.Tests.Infrastructure;

/// <summary>Shared by the whole assembly: where vessel-runc is (env VESSEL_BIN, else &lt;repo&gt;/bin), the engines
/// and runtimes on this machine, and a busybox rootfs tarball that both engines import as localhost/busybox:test.</summary>
public sealed partial class IntegrationEnvironment : IDisposable
{
    public string RepoRoot { get; }
    public string BinDir { get; }
    public string VesselRunc => Path.Combine(BinDir, "vessel-runc");
    /// <summary>/tmp/vessel-test-integ-*: rootfs and its tarball.</summary>
    public string WorkDir { get; }
    public string RootfsTar { get; }

    /// <summary>The runtimes every scenario runs with: ours and the reference.</summary>
    public static readonly string[] Runtimes = ["vessel-runc", "runc"];

    public string RuntimePath(string runtime) => runtime == "vessel-runc" ? VesselRunc : "/usr/bin/" + runtime;

    public IntegrationEnvironment()
    {
        if (geteuid() != 0) throw new InvalidOperationException("the engine integration tests start containerd and podman and need root");
        RepoRoot = FindRepoRoot();
        BinDir = System.Environment.GetEnvironmentVariable("VESSEL_BIN") is { Length: > 0 } bin ? Path.GetFullPath(bin) : Path.Combine(RepoRoot, "bin");
        foreach (var file in new[] { VesselRunc, Path.Combine(BinDir, "vessel-executor") })
            if (!File.Exists(file)) throw new InvalidOperationException($"{file} is missing: build with `make` or set VESSEL_BIN");
        foreach (var tool in new[] { "/usr/bin/containerd", "/usr/bin/ctr", "/usr/bin/podman", "/usr/bin/conmon", "/usr/bin/runc", "/usr/bin/script" })
            if (!File.Exists(tool)) throw new InvalidOperationException($"{tool} is missing: run scripts/setup.sh (apt-get install containerd podman runc util-linux)");
        WorkDir = TempDirs.Create("integ");
        var rootfs = Path.Combine(WorkDir, "rootfs");
        Tool.Run(Path.Combine(RepoRoot, "tests", "fixtures", "busybox-rootfs.sh"), [rootfs]).Ok();
        RootfsTar = Path.Combine(WorkDir, "rootfs.tar");
        Tool.Run("tar", ["-C", rootfs, "-cf", RootfsTar, "."]).Ok();
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Vessel.slnx"))) return dir.FullName;
        throw new InvalidOperationException($"no Vessel.slnx above {AppContext.BaseDirectory}");
    }

    public void Dispose() => TempDirs.Delete(WorkDir);

    [LibraryImport("libc")]
    private static partial uint geteuid();
}

/// <summary>What one host program did.</summary>
public sealed record ToolResult(string Command, int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"{Command}\n  exit {ExitCode}\n  stdout: {Stdout.TrimEnd()}\n  stderr: {Stderr.TrimEnd()}";

    public ToolResult Ok()
    {
        Assert.True(ExitCode == 0, $"expected success:\n{this}");
        return this;
    }

    /// <summary>stdout without the carriage returns a pty adds.</summary>
    public string Out => Stdout.Replace("\r", "");
}

public static class Tool
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(90);

    /// <summary>Runs a program to completion. stdin is a pipe that stays open until the program exits
    /// (<paramref name="stdin"/> is written to it first), so `script` never sees an early end of input.</summary>
    public static ToolResult Run(string file, IEnumerable<string> args, string? stdin = null, TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string>? env = null, bool keepStdinOpen = false)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        var command = $"{file} {string.Join(' ', psi.ArgumentList)}";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null) { p.StandardInput.Write(stdin); p.StandardInput.Flush(); }
        if (!keepStdinOpen) p.StandardInput.Close();
        if (!p.WaitForExit(timeout ?? DefaultTimeout))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            return new ToolResult(command, -1, stdout.Result, stderr.Result + $"\n(killed: timed out after {(timeout ?? DefaultTimeout).TotalSeconds} s)");
        }
        p.WaitForExit();
        if (keepStdinOpen) try { p.StandardInput.Close(); } catch (IOException) { }
        return new ToolResult(command, p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Runs <paramref name="argv"/> on a pty (util-linux `script`), as a user at a terminal would;
    /// `script -e` exits with the command's status.</summary>
    public static ToolResult OnPty(IReadOnlyList<string> argv, IReadOnlyDictionary<string, string>? env = null) =>
        Run("/usr/bin/script", ["-q", "-e", "-c", string.Join(' ', argv.Select(Quote)), "/dev/null"], env: env, keepStdinOpen: true);

    public static string Quote(string s) => "'" + s.Replace("'", "'\\''") + "'";

    /// <summary>Polls until the condition holds (the deadline only turns a hang into a failure).</summary>
    public static void Eventually(Func<bool> condition, string what, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"gave up waiting for {what}");
            Thread.Sleep(50);
        }
    }
}

/// <summary>Cgroup v1/v2 directories under /sys/fs/cgroup of a cgroup path such as /vessel-test-x/ID.</summary>
public static class HostCgroup
{
    private const string Mount = "/sys/fs/cgroup";
    public static bool IsV2 => System.IO.File.Exists(Path.Combine(Mount, "cgroup.controllers"));

    public static string File(string cgroupPath, string controller, string v1File, string v2File) =>
        IsV2 ? Path.Combine(Mount, cgroupPath.TrimStart('/'), v2File) : Path.Combine(Mount, controller, cgroupPath.TrimStart('/'), v1File);

    public static string Read(string cgroupPath, string controller, string v1File, string v2File) =>
        System.IO.File.ReadAllText(File(cgroupPath, controller, v1File, v2File)).Trim();

    /// <summary>Removes the (empty) cgroup tree <paramref name="relative"/> from every hierarchy, deepest first.</summary>
    public static void RemoveTree(string relative)
    {
        var roots = IsV2 ? [Mount] : Directory.GetDirectories(Mount);
        foreach (var root in roots)
        {
            var top = Path.Combine(root, relative.TrimStart('/'));
            if (!Directory.Exists(top)) continue;
            foreach (var d in Directory.GetDirectories(top, "*", SearchOption.AllDirectories).OrderByDescending(d => d.Length).Append(top))
            {
                try { Directory.Delete(d); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            }
        }
    }

    public static List<string> Left(string relative) =>
        (IsV2 ? [Mount] : Directory.GetDirectories(Mount)).Select(r => Path.Combine(r, relative.TrimStart('/'))).Where(Directory.Exists).ToList();
}
