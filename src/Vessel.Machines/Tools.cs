using System.ComponentModel;
using System.Diagnostics;

namespace Vessel.Machines;

/// <summary>The host programs the machine layer runs, and the Debian package each comes from, so a missing one
/// is named with the fix.</summary>
public static class Tools
{
    public const string Qemu = "qemu-system-x86_64";
    public const string QemuImg = "qemu-img";
    public const string Xorriso = "xorriso";

    public static string PackageOf(string tool) => tool switch
    {
        Qemu => "qemu-system-x86",
        QemuImg => "qemu-utils",
        Xorriso => "xorriso",
        _ => tool,
    };

    /// <summary>The full path of <paramref name="tool"/> on PATH (plus /usr/sbin, /usr/bin), or a clear error.</summary>
    public static string Find(string tool)
    {
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin"]);
        foreach (string d in dirs)
        {
            string p = Path.Combine(d, tool);
            if (File.Exists(p)) return p;
        }
        throw new MachineException($"{tool} is not installed: install the package {PackageOf(tool)} (apt-get install {PackageOf(tool)})", MachineErrorKind.Unavailable);
    }

    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    /// <summary>Runs a tool to the end; a non-zero exit is a <see cref="MachineException"/> with its stderr.</summary>
    public static Result Run(string tool, IEnumerable<string> args, TimeSpan? timeout = null, bool check = true)
    {
        var psi = new ProcessStartInfo(Find(tool)) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (string a in args) psi.ArgumentList.Add(a);
        Process p;
        try { p = Process.Start(psi)!; }
        catch (Win32Exception e) { throw new MachineException($"cannot run {tool}: {e.Message}", MachineErrorKind.Unavailable, e); }
        using (p)
        {
            p.StandardInput.Close();
            Task<string> stdout = p.StandardOutput.ReadToEndAsync(), stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(timeout ?? TimeSpan.FromMinutes(30)))
            {
                try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                throw new MachineException($"{tool} {string.Join(' ', psi.ArgumentList)} did not finish in time");
            }
            p.WaitForExit();
            var r = new Result(p.ExitCode, stdout.Result, stderr.Result);
            if (check && r.ExitCode != 0)
            {
                string msg = r.Stderr.Trim().ReplaceLineEndings(" ");
                if (msg.Length == 0) msg = r.Stdout.Trim().ReplaceLineEndings(" ");
                throw new MachineException($"{tool} failed: {msg}");
            }
            return r;
        }
    }
}
