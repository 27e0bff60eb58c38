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

    /// <summary>Starts the executor and waits for `pid N`.</summary>
    public static ExecutorSession Start(byte[] plan, ExecutorFds fds, SafeFd? console, SafeFd? fifo, string argv0)
    {
        var executor = ExecutorPath;
        if (!File.Exists(executor)) throw new RuntimeException($"the executor {executor} is missing; build it with `make`");
        var (ours, theirs) = UnixSocket.SeqPacketPair();
        using var planFd = SafeFd.MemoryFile("vessel-plan", plan);
        var map = new Dictionary<int, SafeFd> { [fds.Sync] = theirs, [fds.Plan] = planFd };
        if (console is not null) map[fds.ConsoleFd] = console;
        if (fifo is not null) map[fds.FifoFd] = fifo;
        int executorPid;
        using (theirs)
            executorPid = Spawn.Start(executor, ["vessel-executor", fds.Sync.ToString(), fds.Plan.ToString()], [], map);
        var session = new ExecutorSession(ours, [argv0]);
        try
        {
            var message = session.Receive();
            Processes.WaitExit(executorPid);
            if (message is null) throw new RuntimeException("the executor exited before starting the container");
            session.Pid = message.StartsWith("pid ", StringComparison.Ordinal) && int.TryParse(message.AsSpan(4), out var pid)
                ? pid : throw session.Failure(message);
            return session;
        }
        catch
        {
            Processes.TryWaitExit(executorPid);
            session.Dispose();
            throw;
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
