using System.Diagnostics;

namespace Vessel.Runc.Tests.Infrastructure;

/// <summary>What one vessel-runc invocation did.</summary>
public sealed record RuncResult(string[] Args, int ExitCode, string Stdout, string Stderr, bool TimedOut)
{
    public override string ToString() =>
        $"vessel-runc {string.Join(' ', Args)}\n  exit {ExitCode}{(TimedOut ? " (killed: timed out)" : "")}\n  stdout: {Stdout.TrimEnd()}\n  stderr: {Stderr.TrimEnd()}";

    /// <summary>Asserts exit status 0 and returns this.</summary>
    public RuncResult Ok()
    {
        Assert.True(ExitCode == 0 && !TimedOut, $"expected success:\n{this}");
        return this;
    }

    /// <summary>Asserts the status, that stderr is exactly one non-empty line, and that it contains every fragment.</summary>
    public RuncResult FailsWith(int exitCode, params string[] fragments)
    {
        Assert.False(TimedOut, $"timed out:\n{this}");
        Assert.True(ExitCode == exitCode, $"expected exit {exitCode}:\n{this}");
        var lines = Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line on stderr:\n{this}");
        foreach (var f in fragments)
            Assert.True(Stderr.Contains(f, StringComparison.Ordinal), $"expected stderr to contain \"{f}\":\n{this}");
        return this;
    }

    public string[] StdoutLines => Stdout.Replace("\r", "").Split('\n', StringSplitOptions.RemoveEmptyEntries);
}

/// <summary>Runs the vessel-runc binary under test with one state root, as containerd or podman would:
/// stdio are plain files (so a created container that keeps them open never blocks us), stdin is
/// /dev/null unless given, and a call that overruns its timeout is killed and reported.</summary>
public sealed class RuncCli(TestEnvironment env, string root)
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    public string Root => root;

    public RuncResult this[params string[] args] => Invoke(args);

    public RuncResult Invoke(IEnumerable<string> args, string? stdin = null, TimeSpan? timeout = null, bool globalOnly = false)
    {
        var argv = globalOnly ? args.ToArray() : ["--root", root, .. args];
        var io = Path.Combine(env.WorkDir, "io-" + Guid.NewGuid().ToString("N"));
        var (inPath, outPath, errPath) = (io + ".in", io + ".out", io + ".err");
        File.WriteAllText(inPath, stdin ?? "");
        try
        {
            // sh exec's vessel-runc with its stdio redirected to the files: the pid we wait for is vessel-runc's.
            var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
            foreach (var a in (string[])["-c", "exec \"$@\" <\"$VT_IN\" >\"$VT_OUT\" 2>\"$VT_ERR\"", "sh", env.RuncPath, .. argv]) psi.ArgumentList.Add(a);
            psi.Environment["VT_IN"] = inPath;
            psi.Environment["VT_OUT"] = outPath;
            psi.Environment["VT_ERR"] = errPath;
            psi.Environment.Remove("VESSEL_EXECUTOR"); // the executor beside vessel-runc, as installed
            using var p = Process.Start(psi)!;
            var timedOut = !p.WaitForExit(timeout ?? DefaultTimeout);
            if (timedOut)
            {
                p.Kill();
                p.WaitForExit();
            }
            return new RuncResult(argv, timedOut ? -1 : p.ExitCode, ReadIfExists(outPath), ReadIfExists(errPath), timedOut);
        }
        finally
        {
            foreach (var f in new[] { inPath, outPath, errPath }) File.Delete(f);
        }
    }

    private static string ReadIfExists(string path) => File.Exists(path) ? File.ReadAllText(path) : "";
}
