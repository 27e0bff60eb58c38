using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace Vessel.Machines.Qmp;

/// <summary>An asynchronous QMP event (docs/interop/qmp-spec.rst, "Asynchronous events"): SHUTDOWN, STOP,
/// RESUME, RESET, POWERDOWN, MIGRATION, … with its data object and QEMU's timestamp.</summary>
public sealed record QmpEvent(string Name, JsonElement Data, DateTimeOffset Timestamp);

/// <summary>QEMU's version from the greeting.</summary>
public sealed record QmpVersion(int Major, int Minor, int Micro, string Package)
{
    public override string ToString() => $"{Major}.{Minor}.{Micro}";
    public bool AtLeast(int major, int minor) => Major > major || (Major == major && Minor >= minor);
}

/// <summary>An error response: QEMU's error class (GenericError, CommandNotFound, DeviceNotFound, …) and its
/// human-readable desc, which is the message.</summary>
public sealed class QmpException(string errorClass, string desc, string command)
    : MachineException(desc, errorClass == "CommandNotFound" ? MachineErrorKind.Invalid : MachineErrorKind.Failed)
{
    public string ErrorClass { get; } = errorClass;
    public string Command { get; } = command;
}

/// <summary>The QMP connection ended (QEMU exited, or closed the monitor) before a command was answered.</summary>
public sealed class QmpDisconnectedException(string message) : MachineException(message);

/// <summary>A QMP client over QEMU's monitor socket (docs/interop/qmp-spec.rst): reads the greeting, negotiates
/// capabilities, then runs commands (each with an id, so responses are matched even when events come in
/// between) and delivers asynchronous events in order on <see cref="Events"/>. One JSON object per line, both ways.
/// Nothing here scrapes text: human-monitor-command is only a fallback the caller chooses.</summary>
public sealed class QmpClient : IAsyncDisposable
{
    private readonly Stream _stream;
    private readonly StreamReader _reader;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Pending> _pending = new(StringComparer.Ordinal);
    private readonly List<string> _order = []; // ids in the order sent: a response without an id answers the oldest
    private readonly Channel<QmpEvent> _events = Channel.CreateUnbounded<QmpEvent>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _closed = new();
    private long _nextId;
    private Task _readLoop = Task.CompletedTask;
    private string? _closeReason;

    public QmpVersion Version { get; private set; } = new(0, 0, 0, "");
    public IReadOnlyList<string> Capabilities { get; private set; } = [];

    /// <summary>Events in the order QEMU sent them; completes when the connection ends.</summary>
    public ChannelReader<QmpEvent> Events => _events.Reader;

    /// <summary>Completes when the connection has ended (QEMU quit or the socket was closed).</summary>
    public Task Completion => _readLoop;

    private sealed record Pending(string Command, TaskCompletionSource<JsonElement> Done);

    private QmpClient(Stream stream)
    {
        _stream = stream;
        _reader = new StreamReader(stream, new UTF8Encoding(false), false, 64 * 1024, leaveOpen: true);
    }

    /// <summary>Connects to QEMU's QMP socket (<c>-qmp unix:PATH,server=on,wait=off</c>), reads the greeting and
    /// leaves capabilities-negotiation mode.</summary>
    public static async Task<QmpClient> ConnectAsync(string socketPath, CancellationToken cancel)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancel);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return await ConnectAsync(new NetworkStream(socket, ownsSocket: true), cancel);
    }

    public static async Task<QmpClient> ConnectAsync(Stream stream, CancellationToken cancel)
    {
        var client = new QmpClient(stream);
        try
        {
            await client.HandshakeAsync(cancel);
            return client;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    private async Task HandshakeAsync(CancellationToken cancel)
    {
        string greeting = await _reader.ReadLineAsync(cancel) ?? throw new QmpDisconnectedException("QMP: the connection closed before the greeting");
        using (JsonDocument doc = Parse(greeting))
        {
            if (!doc.RootElement.TryGetProperty("QMP", out JsonElement qmp))
                throw new MachineException($"QMP: expected a greeting, got {Trim(greeting)}");
            if (qmp.TryGetProperty("version", out JsonElement v))
            {
                JsonElement q = v.GetProperty("qemu");
                Version = new QmpVersion(q.GetProperty("major").GetInt32(), q.GetProperty("minor").GetInt32(), q.GetProperty("micro").GetInt32(),
                    v.TryGetProperty("package", out JsonElement p) ? p.GetString() ?? "" : "");
            }
            if (qmp.TryGetProperty("capabilities", out JsonElement caps) && caps.ValueKind == JsonValueKind.Array)
                Capabilities = caps.EnumerateArray().Select(c => c.GetString() ?? "").ToList();
        }
        _readLoop = Task.Run(ReadLoopAsync);
        await ExecuteAsync("qmp_capabilities", null, cancel);
    }

    /// <summary>Runs <paramref name="command"/> and returns its "return" value; an "error" response throws a
    /// <see cref="QmpException"/> carrying QEMU's class and desc.</summary>
    public async Task<JsonElement> ExecuteAsync(string command, JsonObject? arguments = null, CancellationToken cancel = default)
    {
        string id = "vessel-" + Interlocked.Increment(ref _nextId);
        var pending = new Pending(command, new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously));
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("execute", command);
            if (arguments is not null)
            {
                w.WritePropertyName("arguments");
                arguments.WriteTo(w);
            }
            w.WriteString("id", id);
            w.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        lock (_lock)
        {
            if (_closeReason is not null) throw new QmpDisconnectedException($"QMP {command}: {_closeReason}");
            _pending[id] = pending;
            _order.Add(id);
        }
        try
        {
            await _writeLock.WaitAsync(cancel);
            try
            {
                await _stream.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), cancel);
                await _stream.FlushAsync(cancel);
            }
            finally { _writeLock.Release(); }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            Forget(id);
            throw new QmpDisconnectedException($"QMP {command}: the connection to QEMU is gone ({e.Message})");
        }
        using (cancel.Register(() => { if (Forget(id)) pending.Done.TrySetCanceled(cancel); }))
            return await pending.Done.Task;
    }

    private bool Forget(string id)
    {
        lock (_lock)
        {
            _order.Remove(id);
            return _pending.Remove(id);
        }
    }

    private async Task ReadLoopAsync()
    {
        string reason = "QEMU closed the QMP connection";
        try
        {
            while (true)
            {
                string? line = await _reader.ReadLineAsync(_closed.Token);
                if (line is null) break;
                if (line.Length == 0) continue;
                Dispatch(line);
            }
        }
        catch (OperationCanceledException) { reason = "the QMP connection was closed"; }
        catch (Exception e) when (e is IOException or ObjectDisposedException) { reason = $"the QMP connection broke ({e.Message})"; }
        catch (JsonException e) { reason = $"QEMU sent something that is not JSON ({e.Message})"; }
        List<Pending> orphans;
        lock (_lock)
        {
            _closeReason = reason;
            orphans = [.. _pending.Values];
            _pending.Clear();
            _order.Clear();
        }
        foreach (Pending p in orphans) p.Done.TrySetException(new QmpDisconnectedException($"QMP {p.Command}: {reason}"));
        _events.Writer.TryComplete();
    }

    private void Dispatch(string line)
    {
        using JsonDocument doc = Parse(line);
        JsonElement root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) return;
        if (root.TryGetProperty("event", out JsonElement ev))
        {
            DateTimeOffset time = DateTimeOffset.UtcNow;
            if (root.TryGetProperty("timestamp", out JsonElement ts) && ts.TryGetProperty("seconds", out JsonElement s) && s.TryGetInt64(out long secs))
            {
                long us = ts.TryGetProperty("microseconds", out JsonElement u) && u.TryGetInt64(out long m) ? m : 0;
                if (secs >= 0) time = DateTimeOffset.FromUnixTimeSeconds(secs).AddTicks(Math.Max(0, us) * 10);
            }
            JsonElement data = root.TryGetProperty("data", out JsonElement d) ? d.Clone() : default;
            _events.Writer.TryWrite(new QmpEvent(ev.GetString() ?? "", data, time));
            return;
        }
        bool isReturn = root.TryGetProperty("return", out JsonElement ret);
        bool isError = root.TryGetProperty("error", out JsonElement err);
        if (!isReturn && !isError) return;
        Pending? p;
        lock (_lock)
        {
            string? id = root.TryGetProperty("id", out JsonElement idEl) && idEl.ValueKind == JsonValueKind.String ? idEl.GetString() : null;
            id ??= _order.Count > 0 ? _order[0] : null;
            if (id is null || !_pending.Remove(id, out p)) return;
            _order.Remove(id);
        }
        if (isReturn) p.Done.TrySetResult(ret.Clone());
        else
        {
            string cls = err.TryGetProperty("class", out JsonElement c) ? c.GetString() ?? "GenericError" : "GenericError";
            string desc = err.TryGetProperty("desc", out JsonElement de) ? de.GetString() ?? cls : cls;
            p.Done.TrySetException(new QmpException(cls, desc, p.Command));
        }
    }

    private static JsonDocument Parse(string line)
    {
        try { return JsonDocument.Parse(line); }
        catch (JsonException e) { throw new JsonException($"{e.Message} in {Trim(line)}", e); }
    }

    private static string Trim(string s) => s.Length > 200 ? s[..200] + "…" : s;

    public async ValueTask DisposeAsync()
    {
        await _closed.CancelAsync();
        try { _stream.Dispose(); } catch (IOException) { }
        try { await _readLoop; } catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException) { }
        _reader.Dispose();
        _closed.Dispose();
        _writeLock.Dispose();
    }
}
