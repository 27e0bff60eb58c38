using System.Globalization;
using System.Security.Cryptography;
using Vessel.Api;
using Vessel.Images.Oci;
using Vessel.Linux;
using Vessel.Runtime;
using Vessel.Runtime.Spec;

namespace Vessel.Engine.Containers;

/// <summary>An attach request registered before its container starts: <see cref="ContainerService.Start"/> connects it to
/// the monitor after the runtime's create and before the init runs, so it misses no output (docker's attach-then-start).</summary>
public sealed class AttachTicket : IDisposable
{
    internal readonly TaskCompletionSource<StdioSession> Source = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Action<AttachTicket> _unregister;

    internal AttachTicket(string containerId, ushort rows, ushort columns, Action<AttachTicket> unregister)
    {
        ContainerId = containerId;
        Rows = rows;
        Columns = columns;
        _unregister = unregister;
    }

    public string ContainerId { get; }
    internal ushort Rows { get; }
    internal ushort Columns { get; }

    /// <summary>The session, once the container runs (at once if it already does).</summary>
    public Task<StdioSession> SessionAsync(CancellationToken ct) => Source.Task.WaitAsync(ct);

    public void Dispose()
    {
        _unregister(this);
        if (Source.Task.IsCompletedSuccessfully) { } // the caller owns (and disposes) a session it received
        else Source.TrySetCanceled();
    }
}

/// <summary>One exec instance (docker's exec: created, then started once).</summary>
public sealed class ExecInstance
{
    public required string Id { get; init; }
    public required string ContainerId { get; init; }
    public required ExecCreateRequest Request { get; init; }
    public bool Started { get; set; }
    public bool Running { get; set; }
    public int? ExitCode { get; set; }
    public int Pid { get; set; }
    public DateTimeOffset? FinishedAt { get; set; }
    /// <summary>While it runs: where a resize goes.</summary>
    internal ExecSession? Session { get; set; }
    /// <summary>A window size asked for before the process runs (docker's client may resize before the start is done).</summary>
    internal (ushort Rows, ushort Columns)? PendingSize { get; set; }
}

public sealed partial class ContainerService
{
    private readonly Dictionary<string, List<AttachTicket>> _attachers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ExecInstance> _execs = new(StringComparer.Ordinal);

    // ---- attach ------------------------------------------------------------------------------------------

    /// <summary>Attaches to a container's stdio. A running container is connected at once; a created or exited one
    /// when it is next started. <paramref name="rows"/>/<paramref name="columns"/> (non-zero, tty only) are sent
    /// before the init runs.</summary>
    public AttachTicket Attach(string idOrName, ushort rows = 0, ushort columns = 0)
    {
        ContainerRecord c = Get(idOrName);
        var ticket = new AttachTicket(c.Id, rows, columns, Unregister);
        if (c.State.Status == ContainerStatus.Running)
        {
            ticket.Source.TrySetResult(ConnectMonitor(c, ticket));
            return ticket;
        }
        lock (_lock)
        {
            if (!_attachers.TryGetValue(c.Id, out var list)) _attachers[c.Id] = list = [];
            list.Add(ticket);
        }
        return ticket;
    }

    private void Unregister(AttachTicket t)
    {
        lock (_lock)
            if (_attachers.TryGetValue(t.ContainerId, out var list) && list.Remove(t) && list.Count == 0)
                _attachers.Remove(t.ContainerId);
    }

    private MonitorAttachSession ConnectMonitor(ContainerRecord c, AttachTicket t)
    {
        var req = c.Config.Request;
        var s = MonitorAttachSession.Connect(DirOf(c.Id), req.Tty, req.StdinOnce && !req.Tty, ct => WaitAsync(c.Id, ct));
        if (req.Tty && t.Rows > 0 && t.Columns > 0)
        {
            try { s.ResizeAsync(t.Rows, t.Columns, CancellationToken.None).AsTask().GetAwaiter().GetResult(); }
            catch (IOException) { }
        }
        return s;
    }

    /// <summary>Called by Start between the runtime's create (the monitor serves attach.sock) and start (the init runs).</summary>
    private void ConnectAttachers(ContainerRecord c)
    {
        List<AttachTicket> waiting;
        lock (_lock)
        {
            if (!_attachers.Remove(c.Id, out var list)) return;
            waiting = list;
        }
        foreach (var t in waiting)
        {
            var s = ConnectMonitor(c, t);
            if (!t.Source.TrySetResult(s)) s.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    /// <summary>The monitor's side of a start: the console socket for a tty and the options that say what stdin does.</summary>
    private static (MonitorOptions Monitor, SafeFd? Console) MonitorFor(ContainerRecord c, string dir)
    {
        var req = c.Config.Request;
        SafeFd? ours = null, theirs = null;
        if (req.Tty) (ours, theirs) = UnixSocket.StreamPair();
        var log = LogSettings.Of(req);
        return (new MonitorOptions(dir, log.MaxBytes, log.Files) { ConsoleReceiver = ours, OpenStdin = req.OpenStdin }, theirs);
    }

    /// <summary>Sets the window size of a running container's tty (docker's resize; nothing without a tty).</summary>
    public async Task ResizeAsync(string idOrName, ushort rows, ushort columns, CancellationToken ct)
    {
        ContainerRecord c = Get(idOrName);
        if (c.State.Status != ContainerStatus.Running) throw EngineException.Conflict($"container {c.Id[..12]} is not running");
        if (!c.Config.Request.Tty) return;
        await using var s = MonitorAttachSession.Connect(DirOf(c.Id), true, false, _ => Task.FromResult(0));
        await s.ResizeAsync(rows, columns, ct);
    }

    // ---- exec instances ------------------------------------------------------------------------------------

    /// <summary>The process spec of an exec: the container's user, capabilities and limits, with the request's
    /// command, env, working directory and user.</summary>
    private ProcessSpec ExecProcess(ContainerRecord c, List<string> cmd, List<string>? env, string? workingDir, string? user, bool tty)
    {
        RuntimeSpec config = _runtime.Config(c.Id);
        var envs = ContainerSpec.Env(new ContainerCreateRequest { Image = c.Image, Env = env, Tty = tty }, new ContainerConfig { Env = c.Config.Env }, c.Config.Hostname);
        var u = config.Process!.User;
        if (!string.IsNullOrEmpty(user))
        {
            var (uid, gid, groups) = ContainerSpec.ResolveUser(user, ReadImageFile(c.Id, "etc/passwd"), ReadImageFile(c.Id, "etc/group"));
            u = new UserSpec { Uid = uid, Gid = gid, AdditionalGids = groups.Count > 0 ? groups : null };
        }
        return new ProcessSpec
        {
            Args = cmd, Env = envs, Cwd = string.IsNullOrEmpty(workingDir) ? c.Config.WorkingDir : workingDir, User = u, Terminal = tty,
            Capabilities = config.Process.Capabilities, Rlimits = config.Process.Rlimits, NoNewPrivileges = config.Process.NoNewPrivileges,
        };
    }

    public string CreateExec(string idOrName, ExecCreateRequest req)
    {
        ContainerRecord c = Get(idOrName);
        if (c.State.Status != ContainerStatus.Running) throw EngineException.Conflict($"container {c.Id[..12]} is not running");
        if (req.Cmd is not { Count: > 0 }) throw EngineException.Invalid("exec needs a command");
        var e = new ExecInstance { Id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)), ContainerId = c.Id, Request = req };
        lock (_lock)
        {
            // Finished execs are kept a while for inspect (docker keeps them until the container goes).
            foreach (var old in _execs.Values.Where(x => x.FinishedAt < DateTimeOffset.UtcNow.AddMinutes(-10) || !_all.ContainsKey(x.ContainerId)).ToList())
                _execs.Remove(old.Id);
            _execs[e.Id] = e;
        }
        _events.Publish("container", "exec_create", c.Id, c.Name, new Dictionary<string, string> { ["execID"] = e.Id });
        return e.Id;
    }

    public ExecInstance GetExec(string execId)
    {
        lock (_lock)
        {
            if (_execs.TryGetValue(execId, out var e)) return e;
            var prefix = _execs.Values.Where(x => execId.Length >= 4 && x.Id.StartsWith(execId, StringComparison.Ordinal)).ToList();
            return prefix.Count == 1 ? prefix[0] : throw EngineException.NotFound($"no such exec instance: {execId}");
        }
    }

    public ExecInspect InspectExec(string execId)
    {
        var e = GetExec(execId);
        lock (_lock)
            return new ExecInspect
            {
                Id = e.Id, ContainerId = e.ContainerId, Cmd = e.Request.Cmd, Tty = e.Request.Tty, OpenStdin = e.Request.OpenStdin,
                Running = e.Running, ExitCode = e.ExitCode, Pid = e.Pid,
            };
    }

    /// <summary>Starts an exec instance (once). With <paramref name="detach"/> its stdio is /dev/null; the session
    /// is still returned (its exit task tells when it ends) and should be disposed.</summary>
    public ExecSession StartExec(string execId, bool detach)
    {
        var e = GetExec(execId);
        lock (_lock)
        {
            if (e.Started) throw EngineException.Conflict($"exec {e.Id[..12]} has already been started");
            e.Started = true;
        }
        ContainerRecord c = Get(e.ContainerId);
        if (c.State.Status != ContainerStatus.Running) throw EngineException.Conflict($"container {c.Id[..12]} is not running");
        var r = e.Request;
        ProcessSpec process = ExecProcess(c, r.Cmd, r.Env, r.WorkingDir, r.User, r.Tty);
        ExecSession s;
        try
        {
            s = ExecSession.Start(_runtime, c.Id, process, r.OpenStdin, detach, code =>
            {
                lock (_lock) { e.Running = false; e.ExitCode = code; e.FinishedAt = DateTimeOffset.UtcNow; e.Session = null; }
                _events.Publish("container", "exec_die", c.Id, c.Name, new Dictionary<string, string> { ["execID"] = e.Id, ["exitCode"] = code.ToString(CultureInfo.InvariantCulture) });
            });
        }
        catch (RuntimeException ex) when (ex.ExitCode is 126 or 127)
        {
            lock (_lock) { e.ExitCode = ex.ExitCode; e.FinishedAt = DateTimeOffset.UtcNow; }
            throw new EngineException(ErrorCodes.Invalid, ex.Message);
        }
        catch (Exception ex) when (ex is RuntimeException or IOException or LinuxException)
        {
            lock (_lock) { e.ExitCode = 126; e.FinishedAt = DateTimeOffset.UtcNow; }
            throw EngineException.Conflict(ex.Message);
        }
        (ushort Rows, ushort Columns)? size;
        lock (_lock) { e.Pid = s.Pid; e.Running = e.ExitCode is null; e.Session = s; size = e.PendingSize; }
        if (size is { } z) s.ResizeAsync(z.Rows, z.Columns, CancellationToken.None).AsTask().GetAwaiter().GetResult();   // synchronous for a pty
        _events.Publish("container", "exec_start", c.Id, c.Name, new Dictionary<string, string> { ["execID"] = e.Id });
        return s;
    }

    /// <summary>Sets the window size of a running exec's tty (docker's exec resize; nothing without a tty).</summary>
    public async Task ResizeExecAsync(string execId, ushort rows, ushort columns, CancellationToken ct)
    {
        var e = GetExec(execId);
        ExecSession? s;
        lock (_lock)
        {
            s = e.Running ? e.Session : null;
            if (s is null && e.ExitCode is null)
            {
                e.PendingSize = (rows, columns);   // applied when the process runs
                return;
            }
        }
        if (s is null) throw EngineException.Conflict($"exec {e.Id[..12]} is not running");
        await s.ResizeAsync(rows, columns, ct);
    }
}
