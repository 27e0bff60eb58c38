using Vessel.Api;
using Vessel.Engine;
using Vessel.Engine.Containers;

namespace Vessel.DockerApi;

/// <summary><c>POST /containers/{id}/attach</c> and <c>/resize</c>: the engine's attach sessions (the monitor's live
/// output and stdin, <see cref="ContainerService.Attach"/>) on docker's hijacked connection.</summary>
internal static class AttachEndpoints
{
    /// <summary>The attach sessions being served, per container id, where resizes go.</summary>
    private static readonly Dictionary<string, List<StdioSession>> Live = new(StringComparer.Ordinal);

    public static void Map(WebApplication app, DockerContext d)
    {
        ContainerService containers = d.Engine.Containers;
        app.MapPost("/containers/{id}/attach", ctx => Attach(ctx, d));
        app.MapPost("/containers/{id}/resize", async ctx =>
        {
            var (rows, columns) = DockerStdio.Size(ctx);
            ContainerRecord c = containers.Get(Http.Route(ctx, "id"));
            if (c.State.Status != ContainerStatus.Running) throw EngineException.Conflict($"Container {c.Id} is not running");
            // Through a live attach of this container when there is one (the resize travels on its monitor connection, as
            // the Vessel API's do); else on a connection of its own.
            StdioSession? live;
            lock (Live) live = Live.GetValueOrDefault(c.Id)?.LastOrDefault();
            try
            {
                if (live is not null) await live.ResizeAsync(rows, columns, ctx.RequestAborted);
                else await containers.ResizeAsync(c.Id, rows, columns, ctx.RequestAborted);
            }
            catch (Exception e) when (live is not null && e is IOException or ObjectDisposedException) // that attach just ended
            {
                await containers.ResizeAsync(c.Id, rows, columns, ctx.RequestAborted);
            }
            ctx.Response.StatusCode = 200;
        });
    }

    /// <summary>Attach: with <c>logs</c>, what the container wrote before (from its log); with <c>stream</c>, its live
    /// output until it exits, and the client's stdin into it (<c>stdin</c>, when it was created with OpenStdin). A created
    /// or exited container is connected when it is next started (docker run and start -a attach first, then start), so
    /// nothing it writes is missed. The attach holds the container (<see cref="ContainerService.HoldRemoval"/>): an
    /// AutoRemove container is removed only once the client has read its output to the end.</summary>
    private static async Task Attach(HttpContext ctx, DockerContext d)
    {
        ContainerService containers = d.Engine.Containers;
        ContainerRecord c = containers.Get(Http.Route(ctx, "id"));
        ContainerCreateRequest req = c.Config.Request;
        bool stdin = Http.Bool(ctx, "stdin") && req.OpenStdin, stdout = Http.Bool(ctx, "stdout"), stderr = Http.Bool(ctx, "stderr");
        bool stream = Http.Bool(ctx, "stream"), logs = Http.Bool(ctx, "logs");
        // dockerd watches for the detach keys only on an attached stdin; a bad sequence is an error before the hijack.
        var options = new StdioPumpOptions(stdin, stdout, stderr, stdin ? DetachKeys.Parse(Http.Query(ctx, "detachKeys")) : null);
        using IDisposable hold = containers.HoldRemoval(c.Id);
        DateTimeOffset attachedAt = DateTimeOffset.UtcNow;
        using AttachTicket? ticket = stream ? containers.Attach(c.Id) : null;
        using CancellationTokenSource cts = d.Hijacked();
        Stream conn = await Streams.HijackAsync(ctx);
        StdioSession? session = null;
        try
        {
            if (logs)
            {
                var write = DockerStdio.Writer(conn, req.Tty);
                await foreach (ContainerLogLine l in containers.Logs(c.Id, false, null, null, cts.Token))
                {
                    if (stream && l.Time >= attachedAt) break; // the live session has it
                    bool err = l.Stream == "stderr";
                    if (err ? stderr : stdout)
                        await write(new StdioFrame(err ? StdioStream.Stderr : StdioStream.Stdout, System.Text.Encoding.UTF8.GetBytes(l.Log)), cts.Token);
                }
            }
            if (ticket is null) return;
            session = await SessionAsync(containers, ticket, c.Id, attachedAt, cts.Token);
            if (session is null) return;
            lock (Live)
            {
                if (!Live.TryGetValue(c.Id, out var list)) Live[c.Id] = list = [];
                list.Add(session);
            }
            await DockerStdio.PumpAsync(conn, session, options, cts.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException) { }
        finally
        {
            if (session is not null)
            {
                lock (Live)
                    if (Live.TryGetValue(c.Id, out var list) && list.Remove(session) && list.Count == 0) Live.Remove(c.Id);
                await session.DisposeAsync();
            }
            await conn.DisposeAsync();
        }
    }

    /// <summary>The ticket's session once the container runs; null when it is removed, or its start fails, first.</summary>
    private static async Task<StdioSession?> SessionAsync(ContainerService containers, AttachTicket ticket, string id, DateTimeOffset since, CancellationToken ct)
    {
        Task<StdioSession> s = ticket.SessionAsync(ct);
        while (await Task.WhenAny(s, Task.Delay(250, ct)) != s)
        {
            ContainerRecord? c;
            try { c = containers.Get(id); }
            catch (EngineException) { c = null; }
            // A start connects the ticket before the container can exit, so an exit after the attach with the ticket
            // still waiting is a start that failed.
            bool over = c is null || c.State.Status == ContainerStatus.Exited && c.State.FinishedAt > since;
            if (over && !s.IsCompleted) return null;
        }
        return await s;
    }
}
