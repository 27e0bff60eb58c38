using System.Threading.Channels;
using Vessel.Api;

namespace Vessel.Engine.Events;

/// <summary>Which events a subscriber wants: every given key must match one of its values (docker's semantics:
/// values of one key are OR-ed, keys are AND-ed). Vessel's keys: type, action, id (the id or a prefix of it), name.
/// docker's keys too: event (an action; "health_status" matches "health_status: healthy"), container (a container
/// event by id prefix or name), image (an image event by name or id, or a container event by its image), volume and
/// network (events of that type by id or name).</summary>
public sealed class EventFilter
{
    public static readonly string[] Keys = ["type", "action", "id", "name", "event", "container", "image", "volume", "network"];
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);

    public static EventFilter Parse(IEnumerable<string> filters)
    {
        var f = new EventFilter();
        foreach (string raw in filters)
        {
            int eq = raw.IndexOf('=');
            if (eq <= 0) throw EngineException.Invalid($"bad filter \"{raw}\": expected key=value");
            string key = raw[..eq], value = raw[(eq + 1)..];
            if (!Keys.Contains(key)) throw EngineException.Invalid($"bad filter \"{raw}\": unknown key \"{key}\" (known: {string.Join(", ", Keys)})");
            f.Add(key, value);
        }
        return f;
    }

    public EventFilter Add(string key, string value)
    {
        if (!_values.TryGetValue(key, out List<string>? list)) _values[key] = list = [];
        list.Add(value);
        return this;
    }

    public bool Matches(EventMessage e)
    {
        foreach (var (key, values) in _values)
        {
            bool any = key switch
            {
                "type" => values.Contains(e.Type),
                "action" => values.Contains(e.Action),
                "id" => values.Any(v => v.Length > 0 && e.Id.StartsWith(v, StringComparison.Ordinal)),
                "name" => e.Name is not null && values.Contains(e.Name),
                "event" => values.Any(v => e.Action == v || e.Action.StartsWith(v + ":", StringComparison.Ordinal)),
                "container" => e.Type == "container" && values.Any(v => IdOrName(e, v)),
                "image" => e.Type == "image"
                    ? values.Any(v => IdOrName(e, v) || (e.Name is not null && ImageNameMatches(e.Name, v)))
                    : e.Attributes?.GetValueOrDefault("image") is { } img && values.Any(v => ImageNameMatches(img, v)),
                "volume" => e.Type == "volume" && values.Any(v => IdOrName(e, v)),
                "network" => e.Type == "network" && values.Any(v => IdOrName(e, v)),
                _ => false,
            };
            if (!any) return false;
        }
        return true;
    }

    private static bool IdOrName(EventMessage e, string v) => v.Length > 0 && (e.Id.StartsWith(v, StringComparison.Ordinal) || e.Name == v);

    /// <summary>"busybox" matches busybox:latest and docker.io/library/busybox:latest; "bb:1" matches bb:1.</summary>
    private static bool ImageNameMatches(string name, string v)
    {
        if (name == v) return true;
        string full = v.Contains(':', StringComparison.Ordinal) || v.Contains('@', StringComparison.Ordinal) ? v : v + ":latest";
        return name == full || name == "docker.io/library/" + full || name == "docker.io/" + full;
    }
}

/// <summary>In-process publish/subscribe for engine events, with a bounded history so a subscriber can ask for
/// events since a point in time. Publishing never blocks: a subscriber that falls more than
/// <see cref="SubscriberBuffer"/> events behind is dropped (its reader ends).</summary>
public sealed class EventBus
{
    public const int SubscriberBuffer = 4096;
    private readonly object _lock = new();
    private readonly EventMessage[] _history;
    private int _start, _count;
    private readonly List<Subscription> _subscribers = [];
    private long _lastTime;
    private readonly Func<long> _clock;

    public EventBus(int historySize = 10_000, Func<long>? clock = null)
    {
        _history = new EventMessage[Math.Max(1, historySize)];
        _clock = clock ?? (() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100);
    }

    /// <summary>Publishes an event stamped with the current time (strictly increasing, so "since" is exact).</summary>
    /// <summary>How many live subscribers there are now (streams of `vessel events`).</summary>
    public int SubscriberCount
    {
        get { lock (_lock) return _subscribers.Count; }
    }

    public EventMessage Publish(string type, string action, string id, string? name = null, IReadOnlyDictionary<string, string>? attributes = null)
    {
        lock (_lock)
        {
            long now = Math.Max(_clock(), _lastTime + 1);
            _lastTime = now;
            var e = new EventMessage { Time = now, Type = type, Action = action, Id = id, Name = name, Attributes = attributes };
            if (_count < _history.Length) _history[(_start + _count++) % _history.Length] = e;
            else { _history[_start] = e; _start = (_start + 1) % _history.Length; }
            for (int i = _subscribers.Count - 1; i >= 0; i--)
            {
                Subscription s = _subscribers[i];
                if (!s.Filter.Matches(e)) continue;
                if (!s.Channel.Writer.TryWrite(e))
                {
                    s.Channel.Writer.TryComplete(new EngineException(ErrorCodes.Internal, "event subscriber fell behind and was dropped"));
                    _subscribers.RemoveAt(i);
                }
            }
            return e;
        }
    }

    /// <summary>Events in the history with <paramref name="sinceNanos"/> ≤ time ≤ <paramref name="untilNanos"/>.</summary>
    public IReadOnlyList<EventMessage> History(long sinceNanos, long untilNanos, EventFilter filter)
    {
        lock (_lock) return HistoryLocked(sinceNanos, untilNanos, filter);
    }

    private List<EventMessage> HistoryLocked(long since, long until, EventFilter filter)
    {
        var list = new List<EventMessage>();
        for (int i = 0; i < _count; i++)
        {
            EventMessage e = _history[(_start + i) % _history.Length];
            if (e.Time >= since && e.Time <= until && filter.Matches(e)) list.Add(e);
        }
        return list;
    }

    /// <summary>Streams matching events: first those in the history since <paramref name="sinceNanos"/> (if
    /// given), then live ones, up to <paramref name="untilNanos"/> (if given; the stream ends once the clock
    /// passes it) or until <paramref name="cancel"/>. No event is delivered twice or skipped between the two.</summary>
    public async IAsyncEnumerable<EventMessage> Subscribe(EventFilter filter, long? sinceNanos, long? untilNanos,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancel)
    {
        var sub = new Subscription(filter, Channel.CreateBounded<EventMessage>(new BoundedChannelOptions(SubscriberBuffer)
        {
            FullMode = BoundedChannelFullMode.Wait, SingleReader = true, SingleWriter = false,
        }));
        List<EventMessage> past;
        long until = untilNanos ?? long.MaxValue;
        lock (_lock)
        {
            past = sinceNanos is long s ? HistoryLocked(s, until, filter) : [];
            if (until > _clock()) _subscribers.Add(sub);
            else sub.Channel.Writer.TryComplete();
        }
        try
        {
            foreach (EventMessage e in past) yield return e;
            using var deadline = untilNanos is long u ? new CancellationTokenSource(DelayUntil(u)) : new CancellationTokenSource();
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancel, deadline.Token);
            while (true)
            {
                EventMessage e;
                try
                {
                    if (!await sub.Channel.Reader.WaitToReadAsync(linked.Token)) yield break;
                    if (!sub.Channel.Reader.TryRead(out e!)) continue;
                }
                catch (OperationCanceledException) when (!cancel.IsCancellationRequested) { yield break; }
                if (e.Time > until) yield break;
                if (sinceNanos is long since && e.Time < since) continue;
                yield return e;
            }
        }
        finally
        {
            lock (_lock) _subscribers.Remove(sub);
        }
    }

    private TimeSpan DelayUntil(long untilNanos)
    {
        long ms = (untilNanos - _clock()) / 1_000_000 + 1;
        return TimeSpan.FromMilliseconds(Math.Clamp(ms, 0, int.MaxValue - 1));
    }

    private sealed record Subscription(EventFilter Filter, Channel<EventMessage> Channel);
}
