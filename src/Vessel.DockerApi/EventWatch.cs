using Vessel.Api;
using Vessel.Engine.Events;

namespace Vessel.DockerApi;

/// <summary>One container's events from a point in time, for endpoints that check a state and then wait for its
/// change (wait, attach): the subscription is registered at construction, so nothing between the check and the
/// wait is missed. Disposing cancels a pending read first (an async iterator may not be disposed mid-read).</summary>
internal sealed class EventWatch : IAsyncDisposable
{
    private readonly CancellationTokenSource _cts;
    private readonly IAsyncEnumerator<EventMessage> _events;
    private ValueTask<bool> _pending;

    public EventWatch(DockerContext d, string containerId, long sinceNanos, CancellationToken ct)
    {
        _cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var filter = new EventFilter().Add("type", "container").Add("id", containerId);
        _events = d.Engine.Events.Subscribe(filter, sinceNanos, null, _cts.Token).GetAsyncEnumerator(_cts.Token);
        _pending = _events.MoveNextAsync(); // runs the iterator up to its first wait: the subscription exists from here on
    }

    /// <summary>Unix nanoseconds now, minus one: "since" for a watch that starts now.</summary>
    public static long Now() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100 - 1;

    /// <summary>The next event, or null when the stream ended.</summary>
    public async Task<EventMessage?> NextAsync()
    {
        bool more = await _pending;
        if (!more) return null;
        EventMessage e = _events.Current;
        _pending = _events.MoveNextAsync();
        return e;
    }

    public async ValueTask DisposeAsync()
    {
        await _cts.CancelAsync();
        try { await _pending; }
        catch (Exception e) when (e is OperationCanceledException or Vessel.Engine.EngineException) { }
        await _events.DisposeAsync();
        _cts.Dispose();
    }
}
