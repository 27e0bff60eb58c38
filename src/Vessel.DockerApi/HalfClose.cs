using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace Vessel.DockerApi;

/// <summary>docker clients half-close hijacked connections: once stdin is done (at once when there is none) they
/// shut down their sending side and keep reading the output. Kestrel takes the client's FIN as "connection closed"
/// and aborts the response, which would cut every attach and exec short. This connection wrapper hides the
/// transport's closed signal from the HTTP layer for connections a handler has marked as hijacked; for every other
/// connection it passes through. A hijacked stream ends when the handler ends or a write fails. Its transport is an
/// <see cref="UpgradeBodyPipe"/>, so that upgrade requests with a body can be upgraded too.</summary>
internal sealed class HalfCloseConnection : ConnectionContext
{
    private const string HijackedKey = "vessel.docker.hijacked";
    private readonly ConnectionContext _inner;
    private readonly CancellationTokenSource _closed = new();
    private readonly CancellationTokenRegistration _registration;
    private IDuplexPipe _transport;

    private HalfCloseConnection(ConnectionContext inner)
    {
        _inner = inner;
        _transport = new UpgradeBodyPipe(inner.Transport);
        _registration = inner.ConnectionClosed.Register(() =>
        {
            if (!inner.Items.ContainsKey(HijackedKey)) _closed.Cancel();
        });
    }

    public static Func<ConnectionDelegate, ConnectionDelegate> Middleware => next => async c =>
    {
        await using var wrapped = new HalfCloseConnection(c);
        await next(wrapped);
    };

    /// <summary>Called by a handler before it upgrades the connection.</summary>
    public static void MarkHijacked(HttpContext ctx)
    {
        if (ctx.Features.Get<IConnectionItemsFeature>() is { } items) items.Items[HijackedKey] = true;
    }

    public override string ConnectionId { get => _inner.ConnectionId; set => _inner.ConnectionId = value; }
    public override IFeatureCollection Features => _inner.Features;
    public override IDictionary<object, object?> Items { get => _inner.Items; set => _inner.Items = value; }
    public override IDuplexPipe Transport { get => _transport; set => _transport = value; }
    public override CancellationToken ConnectionClosed { get => _closed.Token; set { } }
    public override EndPoint? LocalEndPoint { get => _inner.LocalEndPoint; set => _inner.LocalEndPoint = value; }
    public override EndPoint? RemoteEndPoint { get => _inner.RemoteEndPoint; set => _inner.RemoteEndPoint = value; }
    public override void Abort(ConnectionAbortedException abortReason) => _inner.Abort(abortReason);
    public override void Abort() => _inner.Abort();

    public override async ValueTask DisposeAsync()
    {
        await _registration.DisposeAsync();
        _closed.Dispose();
    }
}
