using System.Collections.Concurrent;
using System.Net;

namespace Vessel.Images.Tests.Registry;

/// <summary>One request as the proxy saw it.</summary>
public sealed record ProxiedRequest(string Method, string Path, string? Range, int Status, long BytesSent);

/// <summary>A small HTTP proxy on 127.0.0.1 in front of a real registry, to count requests and to inject the
/// failures a real network produces: a connection cut after N bytes, a registry ignoring Range, 429s,
/// corrupted bodies. The client talks to it as if it were the registry (Host is rewritten, so the
/// registry's Location headers point back at the proxy).</summary>
public sealed class LoopbackProxy : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly HttpClient _upstream = new(new SocketsHttpHandler { AllowAutoRedirect = false, AutomaticDecompression = DecompressionMethods.None, UseCookies = false });
    private readonly string _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public int Port { get; }
    public string Host => $"127.0.0.1:{Port}";
    public ConcurrentQueue<ProxiedRequest> Requests { get; } = new();

    /// <summary>Cut the connection after this many body bytes of a GET whose path ends with the given suffix
    /// (each entry is used once).</summary>
    public ConcurrentDictionary<string, long> CutAfter { get; } = new();
    /// <summary>Strip Range headers (a registry/CDN that ignores them).</summary>
    public volatile bool IgnoreRange;
    /// <summary>Answer everything with 429 and this Retry-After (seconds).</summary>
    public int? RateLimitSeconds;
    /// <summary>Replace the body of responses whose path ends with the key.</summary>
    public ConcurrentDictionary<string, Func<byte[], byte[]>> RewriteBody { get; } = new();
    /// <summary>Response headers not passed on.</summary>
    public ConcurrentDictionary<string, bool> DropHeaders { get; } = new(StringComparer.OrdinalIgnoreCase);
    /// <summary>Delay before each blob GET is answered (to make concurrent pulls overlap).</summary>
    public TimeSpan BlobDelay = TimeSpan.Zero;

    public LoopbackProxy(string targetHost)
    {
        _target = targetHost;
        for (int i = 0; ; i++)
        {
            Port = RegistryProcess.FreePort();
            _listener.Prefixes.Clear();
            _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
            try { _listener.Start(); break; }
            catch (HttpListenerException) when (i < 5) { }
        }
        _loop = Task.Run(Loop);
    }

    public IEnumerable<ProxiedRequest> BlobGets(string digestSuffix) =>
        Requests.Where(r => r.Method == "GET" && r.Path.EndsWith(digestSuffix, StringComparison.Ordinal));

    private async Task Loop()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext ctx;
            try { ctx = await _listener.GetContextAsync(); }
            catch (Exception) when (_stop.IsCancellationRequested || !_listener.IsListening) { return; }
            catch (HttpListenerException) { continue; }
            _ = Task.Run(() => Handle(ctx));
        }
    }

    private async Task Handle(HttpListenerContext ctx)
    {
        HttpListenerRequest req = ctx.Request;
        HttpListenerResponse resp = ctx.Response;
        string path = req.Url!.AbsolutePath;
        string? range = req.Headers["Range"];
        try
        {
            if (RateLimitSeconds is int ra)
            {
                resp.StatusCode = 429;
                resp.AddHeader("Retry-After", ra.ToString());
                byte[] b = """{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"""u8.ToArray();
                resp.ContentType = "application/json";
                resp.ContentLength64 = b.Length;
                await resp.OutputStream.WriteAsync(b);
                resp.Close();
                Requests.Enqueue(new ProxiedRequest(req.HttpMethod, path, range, 429, b.Length));
                return;
            }
            if (req.HttpMethod == "GET" && path.Contains("/blobs/") && BlobDelay > TimeSpan.Zero) await Task.Delay(BlobDelay);

            using var up = new HttpRequestMessage(new HttpMethod(req.HttpMethod), $"http://{_target}{req.RawUrl}");
            if (req.HasEntityBody)
            {
                var ms = new MemoryStream();
                await req.InputStream.CopyToAsync(ms);
                up.Content = new ByteArrayContent(ms.ToArray());
            }
            foreach (string? name in req.Headers.AllKeys)
            {
                if (name is null || name is "Host" or "Connection" or "Content-Length" or "Transfer-Encoding" or "Expect" or "Keep-Alive") continue;
                if (name == "Range" && IgnoreRange) continue;
                string value = req.Headers[name]!;
                if (!up.Headers.TryAddWithoutValidation(name, value)) up.Content?.Headers.TryAddWithoutValidation(name, value);
            }
            up.Headers.Host = Host;
            using HttpResponseMessage r = await _upstream.SendAsync(up, HttpCompletionOption.ResponseHeadersRead);
            resp.StatusCode = (int)r.StatusCode;
            foreach (var h in r.Headers.Concat(r.Content.Headers))
            {
                if (h.Key is "Content-Length" or "Transfer-Encoding" or "Connection" or "Keep-Alive" || DropHeaders.ContainsKey(h.Key)) continue;
                foreach (string v in h.Value)
                {
                    try { resp.AddHeader(h.Key, v); } catch (ArgumentException) { }
                }
            }
            byte[]? replaced = null;
            Func<byte[], byte[]>? rewrite = RewriteBody.FirstOrDefault(kv => path.EndsWith(kv.Key, StringComparison.Ordinal)).Value;
            if (rewrite is not null && req.HttpMethod == "GET") replaced = rewrite(await r.Content.ReadAsByteArrayAsync());
            long? length = replaced?.Length ?? r.Content.Headers.ContentLength;
            if (length is long l) resp.ContentLength64 = l;
            else if (req.HttpMethod != "HEAD") resp.SendChunked = true;

            long cut = long.MaxValue;
            string? cutKey = CutAfter.Keys.FirstOrDefault(k => req.HttpMethod == "GET" && path.EndsWith(k, StringComparison.Ordinal));
            if (cutKey is not null && CutAfter.TryRemove(cutKey, out long n)) cut = n;

            long sent = 0;
            if (req.HttpMethod != "HEAD")
            {
                await using Stream body = replaced is not null ? new MemoryStream(replaced) : await r.Content.ReadAsStreamAsync();
                byte[] buf = new byte[16 * 1024];
                int k;
                while ((k = await body.ReadAsync(buf)) > 0)
                {
                    int take = (int)Math.Min(k, cut - sent);
                    await resp.OutputStream.WriteAsync(buf.AsMemory(0, take));
                    sent += take;
                    if (sent >= cut)
                    {
                        await resp.OutputStream.FlushAsync();
                        Requests.Enqueue(new ProxiedRequest(req.HttpMethod, path, range, (int)r.StatusCode, sent));
                        resp.Abort(); // the connection dies mid-body
                        return;
                    }
                }
            }
            Requests.Enqueue(new ProxiedRequest(req.HttpMethod, path, range, (int)r.StatusCode, sent));
            resp.Close();
        }
        catch (Exception)
        {
            try { resp.Abort(); } catch (Exception) { }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        try { _listener.Stop(); _listener.Close(); } catch (Exception) { }
        try { _loop.Wait(5000); } catch (Exception) { }
        _upstream.Dispose();
    }
}
