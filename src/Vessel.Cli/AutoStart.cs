using System.Net.Sockets;
using Vessel.Api;
using Vessel.Linux;

namespace Vessel.Cli;

/// <summary>Starts vesseld when the default socket is not served and the user named no host: the vesseld
/// beside this binary (or $VESSEL_DAEMON), in a session of its own, stdio to &lt;run root&gt;/vesseld.log, then
/// waits up to 15 s for the socket to answer. Tried once per process.</summary>
internal sealed class AutoStart
{
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);
    private bool _tried;

    public bool TryStart(string socket, CancellationToken cancel)
    {
        if (_tried) return false;
        _tried = true;
        string daemon = Environment.GetEnvironmentVariable("VESSEL_DAEMON") is { Length: > 0 } env
            ? env
            : Path.Combine(Path.GetDirectoryName(Environment.ProcessPath) ?? ".", "vesseld");
        if (!File.Exists(daemon))
            throw new CliException($"cannot connect to the Vessel daemon at unix://{socket} and there is no vesseld to start at {daemon} (set VESSEL_DAEMON)");
        if (Processes.EffectiveUid != 0)
            throw new CliException($"cannot connect to the Vessel daemon at unix://{socket}; starting vesseld needs root (run 'sudo {daemon}')");

        string runRoot = ApiInfo.DefaultRunRoot;
        Directory.CreateDirectory(runRoot, (UnixFileMode)0x1ed);
        string logPath = Path.Combine(runRoot, "vesseld.log");
        int pid;
        using (var log = new FileStream(logPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite))
        using (var devnull = new FileStream("/dev/null", FileMode.Open, FileAccess.Read))
        {
            var fds = new Dictionary<int, SafeFd>
            {
                [0] = new(devnull.SafeFileHandle.DangerousGetHandle().ToInt32(), ownsHandle: false),
                [1] = new(log.SafeFileHandle.DangerousGetHandle().ToInt32(), ownsHandle: false),
                [2] = new(log.SafeFileHandle.DangerousGetHandle().ToInt32(), ownsHandle: false),
            };
            var envp = Environment.GetEnvironmentVariables().Keys.Cast<string>()
                .Select(k => $"{k}={Environment.GetEnvironmentVariable(k)}").ToList();
            pid = Spawn.Start(daemon, [daemon, "--socket", socket], envp, fds, newSession: true);
        }
        Console.Error.WriteLine($"vessel: started vesseld (pid {pid})");

        DateTime deadline = DateTime.UtcNow + Wait;
        DateTime? exitedAt = null;
        while (DateTime.UtcNow < deadline)
        {
            cancel.ThrowIfCancellationRequested();
            if (Answers(socket)) return true;
            // Our daemon may exit because another one (started concurrently) won the race: give that one a moment.
            if (exitedAt is null && Processes.TryWaitExit(pid) is int code)
            {
                exitedAt = DateTime.UtcNow;
                if (code != 0 && !File.Exists(socket))
                    throw new CliException($"vesseld exited with status {code}: {LastLine(logPath)} (log: {logPath})");
            }
            if (exitedAt is DateTime t && DateTime.UtcNow - t > TimeSpan.FromSeconds(3))
                throw new CliException($"vesseld exited and nothing serves unix://{socket}: {LastLine(logPath)} (log: {logPath})");
            Thread.Sleep(50);
        }
        throw new CliException($"started vesseld (pid {pid}) but unix://{socket} did not answer within {Wait.TotalSeconds:0} s (log: {logPath})");
    }

    private static bool Answers(string socket)
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try { s.Connect(new UnixDomainSocketEndPoint(socket)); return true; }
        catch (SocketException) { return false; }
    }

    private static string LastLine(string path)
    {
        try { return File.ReadLines(path).LastOrDefault(l => l.Trim().Length > 0)?.Trim() ?? "(empty log)"; }
        catch (IOException) { return "(no log)"; }
    }
}
