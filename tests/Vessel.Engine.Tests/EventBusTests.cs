using Vessel.Api;
using Vessel.Engine.Events;

namespace Vessel.Engine.Tests;

public sealed class EventBusTests
{
    private static readonly TimeSpan T = TimeSpan.FromSeconds(10);

    private static EventBus WithClock(Func<long> clock, int history = 100) => new(history, clock);

    [Fact]
    public void FiltersOrValuesOfOneKeyAndAndKeys()
    {
        var e = new EventMessage { Time = 1, Type = "image", Action = "tag", Id = "sha256:abcdef", Name = "a:1" };
        Assert.True(EventFilter.Parse([]).Matches(e));
        Assert.True(EventFilter.Parse(["type=image"]).Matches(e));
        Assert.True(EventFilter.Parse(["action=untag", "action=tag"]).Matches(e));
        Assert.False(EventFilter.Parse(["type=image", "action=untag"]).Matches(e));
        Assert.True(EventFilter.Parse(["id=sha256:abc"]).Matches(e));
        Assert.False(EventFilter.Parse(["id=sha256:abd"]).Matches(e));
        Assert.True(EventFilter.Parse(["name=a:1", "type=image"]).Matches(e));
        Assert.False(EventFilter.Parse(["name=b:1"]).Matches(e));
        Assert.Equal(ErrorCodes.Invalid, Assert.Throws<EngineException>(() => EventFilter.Parse(["colour=red"])).Code);
        Assert.Equal(ErrorCodes.Invalid, Assert.Throws<EngineException>(() => EventFilter.Parse(["type"])).Code);
    }

    [Fact]
    public void TimesAreStrictlyIncreasingAndHistoryIsBounded()
    {
        var bus = WithClock(() => 1000, history: 3);
        for (int i = 0; i < 5; i++) bus.Publish("image", "tag", $"id{i}");
        var h = bus.History(0, long.MaxValue, new EventFilter());
        Assert.Equal(["id2", "id3", "id4"], h.Select(e => e.Id));
        Assert.Equal([1002L, 1003, 1004], h.Select(e => e.Time));
    }

    [Fact]
    public async Task SinceReplaysHistoryAndUntilInThePastEndsTheStream()
    {
        long now = 1_000;
        var bus = WithClock(() => now);
        bus.Publish("image", "import", "a");           // 1000
        now = 2_000; bus.Publish("image", "tag", "b");  // 2000
        now = 3_000; bus.Publish("volume", "create", "c");
        now = 10_000;
        var got = new List<string>();
        await foreach (var e in bus.Subscribe(EventFilter.Parse(["type=image"]), 1_500, 9_000, CancellationToken.None).WithCancellation(new CancellationTokenSource(T).Token))
            got.Add(e.Id);
        Assert.Equal(["b"], got);
    }

    [Fact]
    public async Task LiveEventsFollowTheHistoryWithoutGapsOrDuplicates()
    {
        var bus = new EventBus();
        bus.Publish("image", "tag", "old");
        using var cts = new CancellationTokenSource(T);
        var got = new List<string>();
        var reader = Task.Run(async () =>
        {
            await foreach (var e in bus.Subscribe(new EventFilter(), 0, null, cts.Token))
            {
                got.Add(e.Id);
                if (got.Count == 3) break;
            }
        });
        // Publish until the subscriber has registered (it then receives each event exactly once).
        while (!reader.IsCompleted && got.Count < 1) await Task.Delay(5);
        bus.Publish("image", "tag", "new1");
        bus.Publish("image", "tag", "new2");
        await reader.WaitAsync(T);
        Assert.Equal(["old", "new1", "new2"], got);
    }

    [Fact]
    public async Task AFutureUntilEndsTheLiveStreamWhenTheClockPassesIt()
    {
        // A fake clock, so the outcome depends on event times and not on how fast this machine is.
        long now = 1_000_000_000_000;
        var bus = new EventBus(clock: () => Interlocked.Read(ref now));
        long until = now + 3_600_000_000_000; // an hour of fake time: the real-time deadline never fires here
        var got = new List<EventMessage>();
        using var subscribed = new SemaphoreSlim(0);
        var reader = Task.Run(async () =>
        {
            await foreach (var e in bus.Subscribe(new EventFilter(), null, until, CancellationToken.None)) got.Add(e);
        });
        while (bus.SubscriberCount == 0) await Task.Yield();
        bus.Publish("image", "tag", "before");
        Interlocked.Exchange(ref now, until + 1);
        bus.Publish("image", "tag", "after");
        await reader.WaitAsync(T);
        Assert.Equal(["before"], got.Select(e => e.Id));
    }
}
