using System.Text.Json;
using Vessel.Api;

namespace Vessel.Engine.Operations;

/// <summary>What a running operation's work sees: its cancellation token and a way to report progress.</summary>
public sealed class OperationContext
{
    private readonly Operation _op;
    internal OperationContext(Operation op, CancellationToken cancel) { _op = op; Cancel = cancel; }

    public string Id => _op.Id;
    public CancellationToken Cancel { get; }

    public void Report(string action, string? item = null, long current = 0, long total = 0, string? message = null) =>
        _op.Append(new ProgressEvent
        {
            Time = OperationManager.NowNanos(), Action = action, Item = item, Current = current, Total = total, Message = message,
        });
}

/// <summary>One long-running task. Its progress log is kept (bounded) so every reader, early or late, sees the
/// whole story; readers wait on a pulse that is replaced on every append, so there is no per-reader buffer.</summary>
public sealed class Operation
{
    public const int MaxProgressEvents = 10_000;
    private readonly object _lock = new();
    private readonly List<ProgressEvent> _log = [];
    private int _dropped;
    private TaskCompletionSource _pulse = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    internal readonly CancellationTokenSource Cts = new();
    private string _status = OperationStatus.Running;
    private DateTimeOffset? _finishedAt;
    private ErrorResponse? _error;
    private JsonElement? _result;

    internal Operation(string id, string kind, string target, DateTimeOffset createdAt)
    {
        Id = id; Kind = kind; Target = target; CreatedAt = createdAt;
    }

    public string Id { get; }
    public string Kind { get; }
    public string Target { get; }
    public DateTimeOffset CreatedAt { get; }
    public Task Completion => _done.Task;
    public bool IsFinished { get { lock (_lock) return _status != OperationStatus.Running; } }
    internal DateTimeOffset? FinishedAt { get { lock (_lock) return _finishedAt; } }

    public OperationInfo Info()
    {
        lock (_lock)
            return new OperationInfo
            {
                Id = Id, Kind = Kind, Status = _status, Target = Target, CreatedAt = CreatedAt,
                FinishedAt = _finishedAt, Error = _error, Result = _result,
            };
    }

    internal void Append(ProgressEvent e)
    {
        TaskCompletionSource pulse;
        lock (_lock)
        {
            if (_status != OperationStatus.Running) return;
            if (_log.Count >= MaxProgressEvents) { _log.RemoveAt(0); _dropped++; }
            _log.Add(e);
            pulse = _pulse;
            _pulse = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        pulse.TrySetResult();
    }

    internal void Finish(string status, ErrorResponse? error, JsonElement? result)
    {
        TaskCompletionSource pulse;
        lock (_lock)
        {
            _status = status; _error = error; _result = result; _finishedAt = DateTimeOffset.UtcNow;
            pulse = _pulse;
        }
        pulse.TrySetResult();
        _done.TrySetResult();
    }

    /// <summary>Every progress event from the start (as far as the bounded log reaches), then live ones, ending
    /// when the operation finishes.</summary>
    public async IAsyncEnumerable<ProgressEvent> Progress([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancel)
    {
        int next = 0; // absolute index
        while (true)
        {
            ProgressEvent[] batch;
            Task wait;
            bool finished;
            lock (_lock)
            {
                int from = Math.Max(next - _dropped, 0);
                batch = _log.Skip(from).ToArray();
                next = _dropped + _log.Count;
                finished = _status != OperationStatus.Running;
                wait = _pulse.Task;
            }
            foreach (ProgressEvent e in batch) yield return e;
            if (finished) yield break;
            await wait.WaitAsync(cancel);
        }
    }
}

/// <summary>Runs long tasks in the background and keeps track of them: many may run at once, each can be
/// cancelled, waited for and followed. Finished operations are kept for <see cref="Retention"/> (at most
/// <see cref="MaxFinished"/> of them) so a client that reconnects can still read the outcome.</summary>
public sealed class OperationManager(Action<string>? log = null)
{
    private readonly object _lock = new();
    private readonly Dictionary<string, Operation> _ops = new(StringComparer.Ordinal);

    public TimeSpan Retention { get; init; } = TimeSpan.FromHours(1);
    public int MaxFinished { get; init; } = 1000;

    internal static long NowNanos() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;

    /// <summary>Starts <paramref name="work"/> on the thread pool and returns at once. The work ends the
    /// operation: a result → succeeded; <see cref="OperationCanceledException"/> after a cancel → cancelled;
    /// <see cref="EngineException"/> → failed with its code; anything else → failed, code "internal".</summary>
    public Operation Start(string kind, string target, Func<OperationContext, Task<JsonElement?>> work)
    {
        var op = new Operation(NewId(), kind, target, DateTimeOffset.UtcNow);
        lock (_lock)
        {
            Prune();
            _ops[op.Id] = op;
        }
        log?.Invoke($"operation {op.Id} {kind} {target}: started");
        _ = Task.Run(async () =>
        {
            try
            {
                JsonElement? result = await work(new OperationContext(op, op.Cts.Token));
                op.Finish(OperationStatus.Succeeded, null, result);
            }
            catch (OperationCanceledException) when (op.Cts.IsCancellationRequested)
            {
                op.Finish(OperationStatus.Cancelled, new ErrorResponse("operation cancelled", ErrorCodes.Cancelled), null);
            }
            catch (EngineException e)
            {
                op.Finish(OperationStatus.Failed, new ErrorResponse(e.Message, e.Code), null);
            }
            catch (Exception e)
            {
                op.Finish(OperationStatus.Failed, new ErrorResponse(OneLine(e), ErrorCodes.Internal), null);
            }
            OperationInfo info = op.Info();
            log?.Invoke($"operation {op.Id} {kind} {target}: {info.Status}{(info.Error is { } err ? ": " + err.Message : "")}");
        });
        return op;
    }

    public Operation Get(string id)
    {
        lock (_lock)
            return _ops.TryGetValue(id, out Operation? op) ? op : throw EngineException.NotFound($"no such operation: {id}");
    }

    public IReadOnlyList<OperationInfo> List()
    {
        lock (_lock)
        {
            Prune();
            return _ops.Values.OrderBy(o => o.CreatedAt).Select(o => o.Info()).ToList();
        }
    }

    public async Task<OperationInfo> WaitAsync(string id, CancellationToken cancel)
    {
        Operation op = Get(id);
        await op.Completion.WaitAsync(cancel);
        return op.Info();
    }

    /// <summary>Requests cancellation and waits (up to <paramref name="timeout"/>) for the work to stop. An operation
    /// that already finished is a conflict.</summary>
    public async Task<OperationInfo> CancelAsync(string id, TimeSpan timeout, CancellationToken cancel)
    {
        Operation op = Get(id);
        if (op.IsFinished) throw EngineException.Conflict($"operation {id} already finished ({op.Info().Status})");
        await op.Cts.CancelAsync();
        try { await op.Completion.WaitAsync(timeout, cancel); }
        catch (TimeoutException) { }
        return op.Info();
    }

    /// <summary>Cancels everything still running and waits for it (daemon shutdown).</summary>
    public async Task CancelAllAsync(TimeSpan timeout)
    {
        Operation[] running;
        lock (_lock) running = _ops.Values.Where(o => !o.IsFinished).ToArray();
        foreach (Operation op in running) await op.Cts.CancelAsync();
        try { await Task.WhenAll(running.Select(o => o.Completion)).WaitAsync(timeout); }
        catch (TimeoutException) { }
    }

    private void Prune()
    {
        DateTimeOffset cutoff = DateTimeOffset.UtcNow - Retention;
        var finished = _ops.Values.Where(o => o.FinishedAt is not null).OrderBy(o => o.FinishedAt).ToList();
        int excess = finished.Count - MaxFinished;
        foreach (Operation o in finished)
            if (excess-- > 0 || o.FinishedAt < cutoff) _ops.Remove(o.Id);
    }

    private static string NewId() => Guid.NewGuid().ToString("N")[..16];

    internal static string OneLine(Exception e)
    {
        string m = e.Message.ReplaceLineEndings(" ").Trim();
        return m.Length == 0 ? e.GetType().Name : m;
    }
}
