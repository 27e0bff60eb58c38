using System.Diagnostics;

namespace Vessel.Tests.Shared;

// Linked into the test projects that mount things under their temp dirs (Vessel.Runc.Tests, Vessel.Integration.Tests).

/// <summary>Temp dirs named /tmp/vessel-test-* (what scripts/leak-check.sh looks for); deleted only after
/// everything mounted below them is detached.</summary>
public static class TempDirs
{
    public static string Create(string tag)
    {
        var dir = Path.Combine("/tmp", $"vessel-test-{tag}-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Mount points at or below <paramref name="dir"/> in the host's mount namespace.</summary>
    public static List<string> MountsUnder(string dir) =>
        File.ReadAllLines("/proc/self/mountinfo")
            .Select(l => l.Split(' ')[4].Replace("\\040", " "))
            .Where(m => m == dir || m.StartsWith(dir + "/", StringComparison.Ordinal))
            .ToList();

    public static void Delete(string dir)
    {
        if (!Directory.Exists(dir)) return;
        foreach (var m in MountsUnder(dir).OrderByDescending(m => m.Length)) Run("umount", ["-l", m], TimeSpan.FromSeconds(10));
        Run("rm", ["-rf", "--one-file-system", dir], TimeSpan.FromSeconds(60));
    }

    private static void Run(string file, string[] args, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        if (!p.WaitForExit(timeout)) p.Kill(entireProcessTree: true);
    }
}
