using System.Net.Http.Json;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Vessel.Api;

namespace Vessel.Cli;

/// <summary>The Vessel API over HTTP/1.1 on a Unix socket. Errors become <see cref="CliException"/> carrying the
/// daemon's message; a socket nobody answers on becomes one line naming it (after an auto-start attempt when
/// the user gave no host).</summary>
internal sealed class Client : IDisposable
{
    private readonly HttpClient _http;
    private readonly bool _debug;
    private readonly AutoStart? _autoStart;

    public string Socket { get; }

    public Client(string socket, bool debug, AutoStart? autoStart)
    {
        Socket = socket;
        _debug = debug;
        _autoStart = autoStart;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = ConnectAsync,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            UseProxy = false,
            AllowAutoRedirect = false,
        };
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://vessel/"), Timeout = Timeout.InfiniteTimeSpan };
    }

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext ctx, CancellationToken cancel)
    {
        try
        {
            return await Connect(cancel);
        }
        catch (SocketException e) when (_autoStart is not null && IsNotServing(e))
        {
            if (!_autoStart.TryStart(Socket, cancel)) throw Unreachable(e);
            try { return await Connect(cancel); }
            catch (SocketException e2) { throw Unreachable(e2); }
        }
        catch (SocketException e) { throw Unreachable(e); }
    }

    /// <summary>A connection of its own to the daemon's socket, for a stream that leaves HTTP (attach, exec).</summary>
    public async Task<Stream> ConnectRaw(CancellationToken cancel)
    {
        try { return await Connect(cancel); }
        catch (SocketException e) { throw Unreachable(e); }
    }

    /// <summary>ENOENT or ECONNREFUSED: nobody serves the socket (as opposed to EACCES).</summary>
    public static bool IsNotServing(SocketException e) =>
        e.SocketErrorCode is SocketError.AddressNotAvailable or SocketError.ConnectionRefused || e.ErrorCode is 2 or 111;

    private async Task<Stream> Connect(CancellationToken cancel)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await s.ConnectAsync(new UnixDomainSocketEndPoint(Socket), cancel);
            return new NetworkStream(s, ownsSocket: true);
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    private CliException Unreachable(SocketException e)
    {
        string why = e.SocketErrorCode switch
        {
            SocketError.AddressNotAvailable => "no such socket",
            SocketError.ConnectionRefused => "connection refused (a stale socket: vesseld is not running)",
            SocketError.AccessDenied => "permission denied (run as root or as a member of the socket's group)",
            _ => e.Message,
        };
        string hint = e.SocketErrorCode == SocketError.AccessDenied ? "" : $"; is vesseld running? start it with 'vesseld --socket {Socket}'";
        return new CliException($"cannot connect to the Vessel daemon at unix://{Socket}: {why}{hint}", CliException.Failure, e);
    }

    /// <summary>Escapes each '/'-separated part of an image name for a URL path.</summary>
    public static string PathName(string name) => string.Join('/', name.Split('/').Select(Uri.EscapeDataString));

    public Task<T> Get<T>(string path, JsonTypeInfo<T> type, CancellationToken cancel) => Send(HttpMethod.Get, path, null, type, cancel);

    public async Task<T> Send<T>(HttpMethod method, string path, HttpContent? body, JsonTypeInfo<T> type, CancellationToken cancel)
    {
        using HttpResponseMessage resp = await Request(method, path, body, HttpCompletionOption.ResponseContentRead, cancel);
        try
        {
            return await resp.Content.ReadFromJsonAsync(type, cancel) ?? throw new CliException($"{method} {path}: empty answer from the daemon");
        }
        catch (JsonException e)
        {
            throw new CliException($"{method} {path}: the daemon's answer is not what this vessel expects ({e.Message}); are vessel and vesseld the same version?");
        }
    }

    public async Task SendNoContent(HttpMethod method, string path, HttpContent? body, CancellationToken cancel)
    {
        using HttpResponseMessage resp = await Request(method, path, body, HttpCompletionOption.ResponseContentRead, cancel);
    }

    /// <summary>A response whose body the caller streams (save); the caller disposes it.</summary>
    public Task<HttpResponseMessage> Stream(HttpMethod method, string path, HttpContent? body, CancellationToken cancel) =>
        Request(method, path, body, HttpCompletionOption.ResponseHeadersRead, cancel);

    public static HttpContent Json<T>(T value, JsonTypeInfo<T> type) => JsonContent.Create(value, type);

    /// <summary>Reads an NDJSON stream line by line (each line parsed by the caller).</summary>
    public async IAsyncEnumerable<string> Lines(string path, [EnumeratorCancellation] CancellationToken cancel)
    {
        using HttpResponseMessage resp = await Request(HttpMethod.Get, path, null, HttpCompletionOption.ResponseHeadersRead, cancel);
        await using Stream body = await resp.Content.ReadAsStreamAsync(cancel);
        using var reader = new StreamReader(body);
        while (true)
        {
            string? line;
            try { line = await reader.ReadLineAsync(cancel); }
            catch (IOException e) when (!cancel.IsCancellationRequested)
            {
                throw new CliException($"the daemon closed the stream: {e.Message}");
            }
            if (line is null) yield break;
            if (line.Length > 0) yield return line;
        }
    }

    private async Task<HttpResponseMessage> Request(HttpMethod method, string path, HttpContent? body, HttpCompletionOption completion, CancellationToken cancel)
    {
        var req = new HttpRequestMessage(method, path) { Content = body };
        if (_debug) Console.Error.WriteLine($"vessel: debug: {method} unix://{Socket} {path}");
        HttpResponseMessage resp;
        try
        {
            resp = await _http.SendAsync(req, completion, cancel);
        }
        catch (HttpRequestException e) when (e.InnerException is CliException ce) { throw ce; }
        catch (HttpRequestException e)
        {
            throw new CliException($"request to the daemon at unix://{Socket} failed: {e.Message}", CliException.Failure, e);
        }
        if (resp.IsSuccessStatusCode) return resp;
        using (resp)
        {
            string text = await resp.Content.ReadAsStringAsync(cancel);
            ErrorResponse? err = null;
            try { err = JsonSerializer.Deserialize(text, ApiJson.Default.ErrorResponse); }
            catch (JsonException) { }
            string msg = err?.Message is { Length: > 0 } m ? m : $"{(int)resp.StatusCode} {resp.ReasonPhrase} from {method} {path}";
            if (_debug) Console.Error.WriteLine($"vessel: debug: {(int)resp.StatusCode} {err?.Code}");
            throw new CliException(msg, CliException.Failure);
        }
    }

    public void Dispose() => _http.Dispose();
}
