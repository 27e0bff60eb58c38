using System.Diagnostics;

[assembly: AssemblyFixture(typeof(Vessel.Runc.Tests.Infrastructure.TestEnvironment))]

namespace Vessel.Runc.Tests.Infrastructure;

/// <summary>Shared by the whole assembly: where the binaries are (env VESSEL_BIN, else &lt;repo&gt;/bin),
/// one busybox rootfs that bundles copy, and runc's default config.json as written by `vessel-runc spec`.</summary>
public sealed class TestEnvironment : IDisposable
{
    public string RepoRoot { get; }
    public string BinDir { get; }
    public string RuncPath => Path.Combine(BinDir, "vessel-runc");
    public string ExecutorPath => Path.Combine(BinDir, "vessel-executor");
    /// <summary>/tmp/vessel-test-env-*: the shared rootfs and scratch files.</summary>
    public string WorkDir { get; }
    public string RootfsDir { get; }
    public string DefaultSpecJson { get; }

    public TestEnvironment()
    {
        if (Native.geteuid() != 0)
            throw new InvalidOperationException("the vessel-runc integration tests run real containers and need root");
        RepoRoot = FindRepoRoot();
        BinDir = Environment.GetEnvironmentVariable("VESSEL_BIN") is { Length: > 0 } bin ? Path.GetFullPath(bin) : Path.Combine(RepoRoot, "bin");
        foreach (var file in new[] { RuncPath, ExecutorPath })
            if (!File.Exists(file))
                throw new InvalidOperationException($"{file} is missing: build with `make` or set VESSEL_BIN to the directory holding vessel-runc and vessel-executor");
        WorkDir = TempDirs.Create("env");
        RootfsDir = Path.Combine(WorkDir, "rootfs");
        var script = Path.Combine(RepoRoot, "tests", "fixtures", "busybox-rootfs.sh");
        var made = Exec.Run(script, [RootfsDir], TimeSpan.FromSeconds(60));
        if (made.ExitCode != 0) throw new InvalidOperationException($"{script} failed: {made.Stderr}");
        var specDir = Path.Combine(WorkDir, "spec");
        Directory.CreateDirectory(specDir);
        var spec = Exec.Run(RuncPath, ["spec", "--bundle", specDir], TimeSpan.FromSeconds(30));
        if (spec.ExitCode != 0) throw new InvalidOperationException($"vessel-runc spec failed: {spec.Stderr}");
        DefaultSpecJson = File.ReadAllText(Path.Combine(specDir, "config.json"));
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Vessel.slnx"))) return dir.FullName;
        throw new InvalidOperationException($"no Vessel.slnx above {AppContext.BaseDirectory}");
    }

    public void Dispose()
    {
        TempDirs.Delete(WorkDir);
        // The parent cgroup every test's linux.cgroupsPath lives under; removed when nothing else uses it.
        foreach (var dir in HostCgroups.ParentDirs())
        {
            try { Directory.Delete(dir); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}

public sealed record ExecResult(int ExitCode, string Stdout, string Stderr);

/// <summary>Runs a host program to completion (helpers, not the binary under test).</summary>
public static class Exec
{
    public static ExecResult Run(string file, IEnumerable<string> args, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            return new ExecResult(-1, stdout.Result, stderr.Result + $"\n{file} timed out");
        }
        p.WaitForExit();
        return new ExecResult(p.ExitCode, stdout.Result, stderr.Result);
    }
}
