using System.Text.Json;
using Vessel.Linux;
using Vessel.Runtime.Plan;
using Vessel.Runtime.Spec;

namespace Vessel.Runtime;

/// <summary>One run of bin/vessel-executor: spawns it with the plan and the fds docs/executor.md names,
/// then speaks the sync protocol. Failures reported by the executor become one-line
/// <see cref="RuntimeException"/>s with the exit codes callers map (127, 126).</summary>
public sealed class ExecutorSession : IDisposable
{
    private const int SetupTimeoutMs = 60_000;
    private readonly SafeFd _sync;
    private readonly List<string> _argv0;

    public int Pid { get; private set; }

    private ExecutorSession(SafeFd sync, List<string> argv0)
    {
        _sync = sync;
        _argv0 = argv0;
    }

    /// <summary>The executor binary: beside the running program, or $VESSEL_EXECUTOR.</summary>
    public static string ExecutorPath
    {
        get
        {
            var fromEnv = Environment.GetEnvironmentVariable("VESSEL_EXECUTOR");
            if (!string.IsNullOrEmpty(fromEnv)) return fromEnv;
            var dir = Path.GetDirectoryName(Environment.ProcessPath) ?? AppContext.BaseDirectory;
            var beside = Path.Combine(dir, "vessel-executor");
            return File.Exists(beside) ? beside : Path.Combine(AppContext.BaseDirectory, "vessel-executor");
        }
    }

    /// <summary>Starts the executor and waits for `pid N`. With <paramref name="monitor"/> the executor is started
    /// as `vessel-executor monitor DIR LOGMAX LOGFILES SYNC_FD PLAN_FD` (docs/containers.md): the monitor stays,
    /// becomes the init's parent and is left running (its pid in <see cref="MonitorOptions.Pid"/>).
    /// <paramref name="stdio"/>: fds 0, 1, 2 of the executor (and so of the container process), else inherited.</summary>
    public static ExecutorSession Start(byte[] plan, ExecutorFds fds, SafeFd? console, SafeFd? fifo, string argv0,
        MonitorOptions? monitor = null, IReadOnlyList<SafeFd>? stdio = null)
    {
        var executor = ExecutorPath;
        if (!File.Exists(executor)) throw new RuntimeException($"the executor {executor} is missing; build it with `make`");
        var (ours, theirs) = UnixSocket.SeqPacketPair();
        using var planFd = SafeFd.MemoryFile("vessel-plan", plan);
        var map = new Dictionary<int, SafeFd> { [fds.Sync] = theirs, [fds.Plan] = planFd };
        if (console is not null) map[fds.ConsoleFd] = console;
        if (fifo is not null) map[fds.FifoFd] = fifo;
        using var devNull = monitor is not null ? SafeFd.Open("/dev/null", 2 /* O_RDWR */) : null;
        if (devNull is not null) for (var i = 0; i < 3; i++) map[i] = devNull;
        if (stdio is not null) for (var i = 0; i < stdio.Count && i < 3; i++) map[i] = stdio[i];
        string[] argv = monitor is null
            ? ["vessel-executor", fds.Sync.ToString(), fds.Plan.ToString()]
            : ["vessel-executor", "monitor", monitor.Dir, monitor.LogMaxBytes.ToString(), monitor.LogFiles.ToString(), fds.Sync.ToString(), fds.Plan.ToString()];
        if (monitor is not null && (monitor.ConsoleReceiver is not null || monitor.OpenStdin))
        {
            // The monitor's own fd, above every fd of the executor's contract: where the pty master arrives.
            var options = new List<string>();
            if (monitor.ConsoleReceiver is not null)
            {
                int fd = Math.Max(fds.Plan, Math.Max(fds.ConsoleFd, fds.FifoFd)) + 1;
                map[fd] = monitor.ConsoleReceiver;
                options.Add($"console={fd}");
            }
            if (monitor.OpenStdin) options.Add("stdin");
            argv = [.. argv, string.Join(',', options)];
        }
        int executorPid;
        using (theirs)
            executorPid = Spawn.Start(executor, argv, [], map, newSession: monitor is not null);
        if (monitor is not null) monitor.Pid = executorPid;
        var session = new ExecutorSession(ours, [argv0]);
        var reaped = false;
        try
        {
            var message = session.Receive();
            if (monitor is null)
            {
                Processes.WaitExit(executorPid);
                reaped = true;
            }
            if (message is null) throw new RuntimeException("the executor exited before starting the container");
            session.Pid = message.StartsWith("pid ", StringComparison.Ordinal) && int.TryParse(message.AsSpan(4), out var pid)
                ? pid : throw session.Failure(message);
            return session;
        }
        catch
        {
            if (monitor is null && !reaped)
            {
                // Our child: it exits right after reporting, but a long-lived caller (vesseld) must not keep its zombie.
                Processes.Kill(executorPid, Signals.SIGKILL);
                Processes.WaitExit(executorPid);
            }
            else ReapMonitor(executorPid);
            session.Dispose();
            throw;
        }
    }

    /// <summary>After a failed start the monitor ends by itself once nothing of the container lives; waits for
    /// it (a few seconds at most, then SIGKILL) so that no zombie is left.</summary>
    public static void ReapMonitor(int pid)
    {
        var deadline = Environment.TickCount64 + 5000;
        while (Processes.TryWaitExit(pid) is null)
        {
            if (Environment.TickCount64 > deadline)
            {
                Processes.Kill(pid, Signals.SIGKILL);
                Processes.WaitExit(pid);
                return;
            }
            Thread.Sleep(10);
        }
    }

    public string? Receive() => UnixSocket.Receive(_sync, SetupTimeoutMs);

    public void Go(ContainerState state) => UnixSocket.Send(_sync, "go " + JsonSerializer.Serialize(state, RuntimeJson.Default.ContainerState));

    public void Send(string message) => UnixSocket.Send(_sync, message);

    /// <summary>Reads messages until <paramref name="expected"/> (or end of stream when null), answering
    /// `hooks` with <paramref name="onHooks"/>.</summary>
    public void WaitFor(string? expected, Action? onHooks = null)
    {
        while (true)
        {
            var message = Receive();
            if (message == expected) return;
            if (message is null) throw new RuntimeException("the container process exited during set-up");
            if (message == "hooks" && onHooks is not null)
            {
                try { onHooks(); }
                catch
                {
                    Send("abort");
                    throw;
                }
                Send("resume");
                continue;
            }
            throw Failure(message);
        }
    }

    /// <summary>Turns `error STEP ERRNO DETAIL` into the message runc would print.</summary>
    public RuntimeException Failure(string message)
    {
        var parts = message.Split(' ', 4);
        if (parts.Length < 3 || parts[0] != "error") return new RuntimeException($"unexpected message from the executor: {message}");
        var (step, errno, detail) = (parts[1], Errno.Parse(parts[2]), parts.Length > 3 ? parts[3] : "");
        var reason = errno > 0 ? Errno.Describe(errno) : parts[2];
        if (step == "exec-lookup")
        {
            var name = detail.Length > 0 ? detail : _argv0[0];
            return errno == Errno.ENOENT
                ? new RuntimeException(name.Contains('/')
                    ? $"unable to start container process: exec: \"{name}\": stat {name}: no such file or directory"
                    : $"unable to start container process: exec: \"{name}\": executable file not found in $PATH", 127)
                : new RuntimeException($"unable to start container process: exec: \"{name}\": permission denied", 126);
        }
        if (step == "plan") return new RuntimeException($"the executor rejected the plan (record {detail}): this is a bug in vessel-runc");
        return new RuntimeException($"unable to start container process: {step}{(detail.Length > 0 ? " " + detail : "")}: {reason}");
    }

    public void Dispose() => _sync.Dispose();
}

/// <summary>Starting the executor as a container's monitor: DIR receives container.log (JSON lines, rotated at
/// <see cref="LogMaxBytes"/> into <see cref="LogFiles"/> files; 0 = no limit) and exit.json.</summary>
public sealed class MonitorOptions(string dir, long logMaxBytes = 0, int logFiles = 1)
{
    public string Dir { get; } = dir;
    public long LogMaxBytes { get; } = logMaxBytes;
    public int LogFiles { get; } = logFiles;
    /// <summary>For a tty: the socket on which the monitor receives the pty master (the executor gets the other end as
    /// its console socket); the monitor then owns the terminal and serves it on DIR/attach.sock.</summary>
    public SafeFd? ConsoleReceiver { get; init; }
    /// <summary>Attach clients' stdin reaches the container (-i): a pipe as its stdin, or the pty master.</summary>
    public bool OpenStdin { get; init; }
    /// <summary>Set once the monitor is spawned: it is the caller's child, to be reaped by the caller.</summary>
    public int Pid { get; internal set; }
}
