using System.Text.Json;
using Vessel.Api;
using Vessel.Engine.Operations;

namespace Vessel.Engine.Tests;

public sealed class OperationTests
{
    private static readonly TimeSpan T = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task ProgressFansOutToEveryReaderAndLateReadersGetTheWholeStory()
    {
        var ops = new OperationManager();
        var step = new SemaphoreSlim(0);
        Operation op = ops.Start("test", "t", async ctx =>
        {
            for (int i = 0; i < 3; i++)
            {
                await step.WaitAsync(ctx.Cancel);
                ctx.Report("step", item: $"i{i}", current: i, total: 3);
            }
            return JsonSerializer.SerializeToElement("ok", ApiJson.Default.String);
        });
        Task<List<ProgressEvent>> early1 = Collect(op);
        Task<List<ProgressEvent>> early2 = Collect(op);
        step.Release();
        step.Release();
        Task<List<ProgressEvent>> late = Task.Run(async () =>
        {
            while (true)
            {
                var seen = await Collect(op, TimeSpan.FromMilliseconds(50));
                if (seen.Count >= 2) return await Collect(op);
            }
        });
        step.Release();
        foreach (var t in new[] { early1, early2, late })
            Assert.Equal(["i0", "i1", "i2"], (await t.WaitAsync(T)).Select(e => e.Item));
        OperationInfo done = await ops.WaitAsync(op.Id, CancellationToken.None).WaitAsync(T);
        Assert.Equal(OperationStatus.Succeeded, done.Status);
        Assert.Equal("ok", done.Result!.Value.GetString());
        Assert.NotNull(done.FinishedAt);
    }

    private static async Task<List<ProgressEvent>> Collect(Operation op, TimeSpan? within = null)
    {
        var list = new List<ProgressEvent>();
        using var cts = new CancellationTokenSource(within ?? T);
        try { await foreach (ProgressEvent e in op.Progress(cts.Token)) list.Add(e); }
        catch (OperationCanceledException) when (within is not null) { }
        return list;
    }

    [Fact]
    public async Task CancelStopsTheWorkAndSaysCancelled()
    {
        var ops = new OperationManager();
        var started = new TaskCompletionSource();
        Operation op = ops.Start("test", "t", async ctx =>
        {
            started.SetResult();
            await Task.Delay(Timeout.Infinite, ctx.Cancel);
            return null;
        });
        await started.Task.WaitAsync(T);
        Assert.Equal(OperationStatus.Running, ops.Get(op.Id).Info().Status);
        OperationInfo info = await ops.CancelAsync(op.Id, T, CancellationToken.None);
        Assert.Equal(OperationStatus.Cancelled, info.Status);
        Assert.Equal(ErrorCodes.Cancelled, info.Error!.Code);
        // A finished operation cannot be cancelled again; an unknown one is not found.
        var again = await Assert.ThrowsAsync<EngineException>(() => ops.CancelAsync(op.Id, T, CancellationToken.None));
        Assert.Equal(ErrorCodes.Conflict, again.Code);
        var missing = Assert.Throws<EngineException>(() => ops.Get("nope"));
        Assert.Equal(ErrorCodes.NotFound, missing.Code);
    }

    [Fact]
    public async Task FailuresKeepTheirCodeAndUnexpectedOnesAreInternal()
    {
        var ops = new OperationManager();
        Operation a = ops.Start("test", "a", _ => throw EngineException.Invalid("bad input"));
        Operation b = ops.Start("test", "b", _ => throw new IOException("disk on fire"));
        OperationInfo ia = await ops.WaitAsync(a.Id, CancellationToken.None).WaitAsync(T);
        OperationInfo ib = await ops.WaitAsync(b.Id, CancellationToken.None).WaitAsync(T);
        Assert.Equal((OperationStatus.Failed, ErrorCodes.Invalid, "bad input"), (ia.Status, ia.Error!.Code, ia.Error.Message));
        Assert.Equal((OperationStatus.Failed, ErrorCodes.Internal, "disk on fire"), (ib.Status, ib.Error!.Code, ib.Error.Message));
        Assert.Equal(2, ops.List().Count);
    }

    [Fact]
    public async Task WaitHonoursTheCallersCancellation()
    {
        var ops = new OperationManager();
        Operation op = ops.Start("test", "t", async ctx => { await Task.Delay(Timeout.Infinite, ctx.Cancel); return null; });
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => ops.WaitAsync(op.Id, cts.Token));
        Assert.Equal(OperationStatus.Running, op.Info().Status);
        await ops.CancelAllAsync(T);
        Assert.Equal(OperationStatus.Cancelled, op.Info().Status);
    }

    [Fact]
    public async Task FinishedOperationsAreForgottenAfterTheRetention()
    {
        var ops = new OperationManager { Retention = TimeSpan.Zero };
        Operation op = ops.Start("test", "t", _ => Task.FromResult<JsonElement?>(null));
        await op.Completion.WaitAsync(T);
        await Task.Delay(10);
        Assert.Empty(ops.List());
    }
}
