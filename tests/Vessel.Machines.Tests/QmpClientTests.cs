using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Vessel.Machines.Qmp;
using Vessel.Tests;

namespace Vessel.Machines.Tests;

/// <summary>A fake QMP server speaking QEMU's wire format (docs/interop/qmp-spec.rst): the greeting, capabilities
/// negotiation, then scripted answers; lines end in \r\n as QEMU's do.</summary>
internal sealed class FakeQmp : IAsyncDisposable
{
    private readonly Socket _listener = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
    private readonly TempDir _tmp = new();
    private Socket? _conn;
    private StreamReader? _reader;

    public string Path { get; }
    public List<JsonObject> Received { get; } = [];

    public FakeQmp()
    {
        Path = System.IO.Path.Combine(_tmp.Path, "qmp.sock");
        _listener.Bind(new UnixDomainSocketEndPoint(Path));
        _listener.Listen(1);
    }

    /// <summary>Accepts the client, sends the greeting and answers qmp_capabilities.</summary>
    public async Task AcceptAsync()
    {
        _conn = await _listener.AcceptAsync();
        _reader = new StreamReader(new NetworkStream(_conn, ownsSocket: false), Encoding.UTF8);
        await SendAsync("""{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7"}, "capabilities": ["oob"]}}""");
        JsonObject caps = await ReceiveAsync();
        Assert.Equal("qmp_capabilities", (string?)caps["execute"]);
        await ReplyAsync(caps, "{}");
    }

    /// <summary>Accepts without the QMP handshake (to send something else).</summary>
    public async Task<Socket> AcceptRawAsync() => await _listener.AcceptAsync();

    public async Task<JsonObject> ReceiveAsync()
    {
        string line = await _reader!.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(10)) ?? throw new IOException("client closed");
        var o = JsonNode.Parse(line)!.AsObject();
        Received.Add(o);
        return o;
    }

    public Task SendAsync(string json) => _conn!.SendAsync(Encoding.UTF8.GetBytes(json + "\r\n"));

    public Task ReplyAsync(JsonObject request, string returnJson) =>
        SendAsync($$"""{"return": {{returnJson}}, "id": {{request["id"]!.ToJsonString()}}}""");

    public Task EventAsync(string name, string data = "{}") =>
        SendAsync($$"""{"timestamp": {"seconds": 1700000000, "microseconds": 250000}, "event": "{{name}}", "data": {{data}}}""");

    public void Close() => _conn?.Shutdown(SocketShutdown.Both);

    public ValueTask DisposeAsync()
    {
        _reader?.Dispose();
        _conn?.Dispose();
        _listener.Dispose();
        _tmp.Dispose();
        return ValueTask.CompletedTask;
    }
}

public sealed class QmpClientTests
{
    private static async Task<(FakeQmp Server, QmpClient Client)> Connect()
    {
        var server = new FakeQmp();
        Task accept = server.AcceptAsync();
        Task<QmpClient> client = QmpClient.ConnectAsync(server.Path, CancellationToken.None);
        await accept;
        return (server, await client);
    }

    [Fact]
    public async Task Greeting_and_capabilities_are_negotiated()
    {
        var (server, client) = await Connect();
        await using var _ = server;
        await using var __ = client;
        Assert.Equal(new QmpVersion(7, 2, 22, "Debian 1:7.2+dfsg-7"), client.Version);
        Assert.Equal(["oob"], client.Capabilities);
        Assert.Single(server.Received);
    }

    [Fact]
    public async Task Execute_sends_an_id_and_arguments_and_returns_the_return_value()
    {
        var (server, client) = await Connect();
        await using var _ = server;
        await using var __ = client;
        Task<JsonElement> call = client.ExecuteAsync("block_resize", new JsonObject { ["device"] = "disk0", ["size"] = 1073741824L });
        JsonObject req = await server.ReceiveAsync();
        Assert.Equal("block_resize", (string?)req["execute"]);
        Assert.Equal("disk0", (string?)req["arguments"]!["device"]);
        Assert.Equal(1073741824L, (long)req["arguments"]!["size"]!);
        Assert.StartsWith("vessel-", (string?)req["id"]);
        // An event between command and answer must not be taken for the answer.
        await server.EventAsync("RESET", """{"guest": true, "reason": "guest-reset"}""");
        await server.ReplyAsync(req, """{"status": "running", "running": true}""");
        JsonElement ret = await call;
        Assert.True(ret.GetProperty("running").GetBoolean());
        QmpEvent e = await client.Events.ReadAsync();
        Assert.Equal("RESET", e.Name);
        Assert.Equal("guest-reset", e.Data.GetProperty("reason").GetString());
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1700000000).AddMilliseconds(250), e.Timestamp);
    }

    [Fact]
    public async Task Answers_are_matched_by_id_even_out_of_order()
    {
        var (server, client) = await Connect();
        await using var _ = server;
        await using var __ = client;
        Task<JsonElement> a = client.ExecuteAsync("query-status");
        JsonObject ra = await server.ReceiveAsync();
        Task<JsonElement> b = client.ExecuteAsync("query-name");
        JsonObject rb = await server.ReceiveAsync();
        await server.ReplyAsync(rb, """{"name": "b"}""");
        await server.ReplyAsync(ra, """{"status": "paused", "running": false}""");
        Assert.Equal("b", (await b).GetProperty("name").GetString());
        Assert.Equal("paused", (await a).GetProperty("status").GetString());
    }

    [Fact]
    public async Task An_error_response_throws_with_qemus_class_and_desc()
    {
        var (server, client) = await Connect();
        await using var _ = server;
        await using var __ = client;
        Task<JsonElement> call = client.ExecuteAsync("device_del", new JsonObject { ["id"] = "nope" });
        JsonObject req = await server.ReceiveAsync();
        await server.SendAsync($$"""{"error": {"class": "DeviceNotFound", "desc": "Device 'nope' not found"}, "id": {{req["id"]!.ToJsonString()}}}""");
        var e = await Assert.ThrowsAsync<QmpException>(() => call);
        Assert.Equal("DeviceNotFound", e.ErrorClass);
        Assert.Equal("Device 'nope' not found", e.Message);
        Assert.Equal("device_del", e.Command);
    }

    [Fact]
    public async Task Events_arrive_in_order_and_the_stream_ends_when_qemu_goes()
    {
        var (server, client) = await Connect();
        await using var _ = server;
        await using var __ = client;
        foreach (string name in new[] { "STOP", "RESUME", "POWERDOWN" }) await server.EventAsync(name);
        await server.EventAsync("SHUTDOWN", """{"guest": true, "reason": "guest-shutdown"}""");
        await server.EventAsync("MIGRATION", """{"status": "completed"}""");
        Task<JsonElement> pending = client.ExecuteAsync("query-status");
        await server.ReceiveAsync();
        server.Close();
        var names = new List<string>();
        await foreach (QmpEvent e in client.Events.ReadAllAsync().WithCancellation(new CancellationTokenSource(10_000).Token)) names.Add(e.Name);
        Assert.Equal(["STOP", "RESUME", "POWERDOWN", "SHUTDOWN", "MIGRATION"], names);
        await Assert.ThrowsAsync<QmpDisconnectedException>(() => pending);
        await Assert.ThrowsAsync<QmpDisconnectedException>(() => client.ExecuteAsync("cont"));
    }

    [Fact]
    public async Task A_server_that_is_not_qmp_is_refused()
    {
        await using var server = new FakeQmp();
        Task<QmpClient> client = QmpClient.ConnectAsync(server.Path, CancellationToken.None);
        using Socket conn = await server.AcceptRawAsync();
        await conn.SendAsync("""{"hello": 1}"""u8.ToArray().Concat("\r\n"u8.ToArray()).ToArray());
        await Assert.ThrowsAsync<MachineException>(() => client);
    }
}
