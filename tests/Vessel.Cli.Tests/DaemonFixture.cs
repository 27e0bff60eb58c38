using System.Diagnostics;
using System.Net.Sockets;
using Vessel.Tests;

namespace Vessel.Cli.Tests;

/// <summary>The built binaries: $VESSEL_BIN (make test sets it to bin/), else &lt;repo&gt;/bin.</summary>
public static class Binaries
{
    public static string Dir { get; } = Environment.GetEnvironmentVariable("VESSEL_BIN") is { Length: > 0 } d ? d : Path.Combine(RepoRoot(), "bin");
    public static string Vessel => Path.Combine(Dir, "vessel");
    public static string Vesseld => Path.Combine(Dir, "vesseld");

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Vessel.slnx"))) return dir.FullName;
        throw new InvalidOperationException("cannot find the repository root (Vessel.slnx) above " + AppContext.BaseDirectory);
    }

    public sealed record Result(int Code, string Out, string Err)
    {
        public string[] OutLines => Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        public string[] ErrLines => Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        public override string ToString() => $"exit {Code}\nstdout:\n{Out}\nstderr:\n{Err}";
    }

    /// <summary>Runs a program with VESSEL_HOST/VESSEL_DAEMON removed unless given in <paramref name="env"/>.</summary>
    public static Result Run(string file, IEnumerable<string> args, IDictionary<string, string?>? env = null, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("VESSEL_HOST");
        psi.Environment.Remove("VESSEL_DAEMON");
        foreach (var (k, v) in env ?? new Dictionary<string, string?>()) psi.Environment[k] = v;
        using Process p = Process.Start(psi)!;
        p.StandardInput.Close();
        Task<string> o = p.StandardOutput.ReadToEndAsync(), e = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout ?? TimeSpan.FromSeconds(60)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish");
        }
        return new Result(p.ExitCode, o.Result, e.Result);
    }

    public static bool Answers(string socket)
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try { s.Connect(new UnixDomainSocketEndPoint(socket)); return true; }
        catch (SocketException) { return false; }
    }

    /// <summary>SIGTERM, then SIGKILL after 10 s; waits until the process is gone (or a zombie: a daemon that
    /// vessel started is not our child, and its new parent may be slow to reap it).</summary>
    public static void Stop(int pid)
    {
        if (!Running(pid)) return;
        Kill(pid, 15);
        if (WaitGone(pid, TimeSpan.FromSeconds(10))) return;
        Kill(pid, 9);
        WaitGone(pid, TimeSpan.FromSeconds(10));
    }

    private static bool WaitGone(int pid, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (!Running(pid)) return true;
            Thread.Sleep(20);
        }
        return false;
    }

    private static bool Running(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)] != 'Z';
        }
        catch (IOException) { return false; }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    private static extern int Kill(int pid, int sig);
}

/// <summary>One vesseld on a temp socket, state root and run root under /tmp/vessel-test-*, for a test class.</summary>
public sealed class DaemonFixture : IDisposable
{
    public TempDir Tmp { get; } = new();
    public string Socket { get; }
    public string Root { get; }
    public string RunRoot { get; }
    public string Host => "unix://" + Socket;
    public Process Process { get; private set; }

    /// <summary>Takes over a vesseld started again on this fixture's state (restart tests); the old one has exited.</summary>
    internal void Replace(Process restarted)
    {
        Process.Dispose();
        Process = restarted;
    }

    public DaemonFixture() : this([]) { }

    /// <param name="extraArgs">More vesseld flags (e.g. --auth-file, --insecure-registry).</param>
    internal DaemonFixture(IEnumerable<string> extraArgs)
    {
        Socket = Path.Combine(Tmp.Path, "vessel.sock");
        Root = Path.Combine(Tmp.Path, "root");
        RunRoot = Path.Combine(Tmp.Path, "run");
        var psi = new ProcessStartInfo(Binaries.Vesseld) { RedirectStandardError = true, RedirectStandardOutput = true };
        // Networking is per daemon and global on the host: a bridge, a subnet and an nftables table of its own, so
        // test daemons running at the same time never share them (removed in Dispose).
        string tag = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));
        Bridge = "vt-" + tag;
        NftTable = "vessel-t" + tag;
        Subnet = $"10.{System.Security.Cryptography.RandomNumberGenerator.GetInt32(160, 250)}.{System.Security.Cryptography.RandomNumberGenerator.GetInt32(0, 256)}.0/24";
        Args = ["--socket", Socket, "--root", Root, "--run-root", RunRoot, "--bridge", Bridge, "--nft-table", NftTable, "--bridge-subnet", Subnet, .. extraArgs];
        foreach (string a in Args) psi.ArgumentList.Add(a);
        Process = Process.Start(psi)!;
        Process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (Log) Log.Add(e.Data); };
        Process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!Binaries.Answers(Socket))
        {
            if (Process.HasExited) throw new InvalidOperationException($"vesseld exited with {Process.ExitCode}: {string.Join('\n', Log)}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException("vesseld did not answer within 30 s");
            Thread.Sleep(20);
        }
    }

    public List<string> Log { get; } = [];
    /// <summary>vesseld's arguments, to start it again on the same state.</summary>
    public string[] Args { get; }
    public string Bridge { get; }
    public string NftTable { get; }
    public string Subnet { get; }

    public Binaries.Result Vessel(params string[] args) => Binaries.Run(Binaries.Vessel, ["-H", Host, .. args]);

    public void Dispose()
    {
        Binaries.Stop(Process.Id);
        Process.WaitForExit(10_000);
        Process.Dispose();
        // The default network outlives its daemon (as docker0 does): remove it and the table, if they were made.
        Binaries.Run("ip", ["link", "del", Bridge]);
        Binaries.Run("nft", ["delete", "table", "inet", NftTable]);
        Tmp.Dispose();
    }
}
