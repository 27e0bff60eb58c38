using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Vessel.Images.Content;
using Vessel.Images.Oci;
using Vessel.Images.References;

namespace Vessel.Images.Registry;

public sealed record RegistryOptions
{
    /// <summary>Registries (host[:port]) reached over plain HTTP although not on loopback. Loopback registries
    /// (127.0.0.0/8, ::1, localhost) always use plain HTTP; everything else HTTPS.</summary>
    public IReadOnlyCollection<string> InsecureRegistries { get; init; } = [];
    /// <summary>Platform picked from multi-arch indexes (default linux/amd64).</summary>
    public PlatformSpec Platform { get; init; } = PlatformSpec.Default;
    /// <summary>Blobs transferred at once per pull or push.</summary>
    public int MaxConcurrentTransfers { get; init; } = 3;
    /// <summary>Blobs larger than this are uploaded in PATCH chunks of this size; smaller ones in one PUT.</summary>
    public int UploadChunkSize { get; init; } = 16 * 1024 * 1024;
    /// <summary>Attempts per blob download; each retry continues where the last one stopped (HTTP Range).</summary>
    public int DownloadAttempts { get; init; } = 3;
    /// <summary>Credentials; null = anonymous only.</summary>
    public CredentialStore? Credentials { get; init; }
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>A transfer that receives nothing for this long is treated as interrupted.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(60);
    public string UserAgent { get; init; } = "vessel/0.1";
    /// <summary>For tests and special transports; by default a SocketsHttpHandler without redirects or
    /// decompression.</summary>
    public HttpMessageHandler? Handler { get; init; }
}

/// <summary>The result of a pull: the reference as tagged, its top-level descriptor (manifest or index), the
/// platform manifest, and how much was actually downloaded.</summary>
public sealed record PullResult(ImageRef Reference, Descriptor Target, Descriptor Manifest, int BlobsDownloaded, long BytesDownloaded);

/// <summary>Client for the OCI distribution API (pull, push, ping/login) with anonymous, Basic and Bearer-token
/// auth. All content goes through the <see cref="ContentStore"/> and is digest-verified; every failure is one
/// line (<see cref="RegistryException"/>, <see cref="DigestMismatchException"/>, <see cref="ContentException"/>).</summary>
public sealed partial class RegistryClient : IDisposable
{
    private static readonly string[] ManifestAccept =
        [MediaTypes.OciIndex, MediaTypes.OciManifest, MediaTypes.DockerManifestList, MediaTypes.DockerManifest];

    private readonly ContentStore _store;
    private readonly ReferenceStore _refs;
    private readonly RegistryOptions _options;
    private readonly HttpClient _http;
    private readonly BlobSources _sources;
    private readonly HashSet<string> _insecure;

    // Per registry: which scheme it challenged with, bearer tokens per scope set, credentials read once.
    private readonly ConcurrentDictionary<string, string> _authScheme = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (string Token, DateTimeOffset Expires)> _tokens = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, RegistryCredentials?> _creds = new(StringComparer.Ordinal);

    public RegistryClient(ContentStore store, ReferenceStore refs, RegistryOptions? options = null)
    {
        _store = store;
        _refs = refs;
        _options = options ?? new RegistryOptions();
        _sources = new BlobSources(store.Root);
        _insecure = new HashSet<string>(_options.InsecureRegistries.Select(CredentialStore.NormalizeKey), StringComparer.Ordinal);
        HttpMessageHandler handler = _options.Handler ?? new SocketsHttpHandler
        {
            AllowAutoRedirect = false, // followed by hand: Authorization must not leak to another host
            AutomaticDecompression = DecompressionMethods.None, // layers are gzip and must stay byte-exact
            ConnectTimeout = _options.ConnectTimeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            UseCookies = false,
        };
        _http = new HttpClient(handler, disposeHandler: _options.Handler is null) { Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd(_options.UserAgent);
    }

    public void Dispose() => _http.Dispose();

    /// <summary>"http" for loopback and insecure registries, else "https".</summary>
    public string SchemeFor(string registry) =>
        ImageRef.IsLoopback(registry) || _insecure.Contains(CredentialStore.NormalizeKey(registry)) ? "http" : "https";

    private Uri BaseUri(string registry)
    {
        string host = registry == ImageRef.DockerHub ? ImageRef.DockerHubApiHost : registry;
        return new Uri($"{SchemeFor(registry)}://{host}/");
    }

    private Uri ApiUri(string registry, string pathAndQuery) => new(BaseUri(registry), pathAndQuery);

    // ---------------------------------------------------------------- ping, login

    /// <summary>GET /v2/ with whatever credentials are stored: succeeds when the registry speaks the API and
    /// lets us in.</summary>
    public Task PingAsync(string registry, CancellationToken ct = default) => PingAsync(registry, null, ct);

    private async Task PingAsync(string registry, RegistryCredentials? creds, CancellationToken ct)
    {
        using HttpResponseMessage resp = await SendAsync(registry, () => new HttpRequestMessage(HttpMethod.Get, ApiUri(registry, "v2/")), [], ct, creds).ConfigureAwait(false);
        if (resp.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden && creds is not null)
            throw new RegistryException(RegistryErrorKind.Unauthorized, registry,
                $"login to {registry} failed: wrong username or password for \"{creds.Username}\"{await ErrorSuffix(resp, ct).ConfigureAwait(false)}", (int)resp.StatusCode);
        if (!resp.IsSuccessStatusCode) throw await ErrorAsync(resp, registry, $"ping {registry}", null, ct).ConfigureAwait(false);
        if (!resp.Headers.TryGetValues("Docker-Distribution-API-Version", out _) && resp.Content.Headers.ContentType?.MediaType is "text/html")
            throw new RegistryException(RegistryErrorKind.BadResponse, registry, $"{BaseUri(registry)} answered /v2/ with an HTML page: not a container registry");
    }

    /// <summary>Verifies the credentials against the registry (the full auth flow, as docker login does), then
    /// stores them. Nothing is stored when the registry refuses them.</summary>
    public async Task LoginAsync(string registry, RegistryCredentials credentials, CancellationToken ct = default)
    {
        CredentialStore store = _options.Credentials ?? throw new InvalidOperationException("login needs RegistryOptions.Credentials");
        registry = CredentialStore.NormalizeKey(registry);
        ForgetAuth(registry);
        await PingAsync(registry, credentials, ct).ConfigureAwait(false);
        store.Save(registry, credentials);
        _creds[registry] = credentials;
    }

    /// <summary>Removes stored credentials; false if there were none in Vessel's file.</summary>
    public bool Logout(string registry)
    {
        CredentialStore store = _options.Credentials ?? throw new InvalidOperationException("logout needs RegistryOptions.Credentials");
        registry = CredentialStore.NormalizeKey(registry);
        ForgetAuth(registry);
        _creds[registry] = null;
        return store.Remove(registry);
    }

    private void ForgetAuth(string registry)
    {
        _authScheme.TryRemove(registry, out _);
        foreach (string k in _tokens.Keys.Where(k => k.StartsWith(registry + "\n", StringComparison.Ordinal))) _tokens.TryRemove(k, out _);
    }

    private RegistryCredentials? CredentialsFor(string registry) =>
        _creds.GetOrAdd(CredentialStore.NormalizeKey(registry), r => _options.Credentials?.Get(r));

    // ---------------------------------------------------------------- HTTP with auth

    /// <summary>Sends a request (built fresh by <paramref name="make"/> for every attempt), following redirects
    /// and answering one 401 challenge: Bearer (token for the scopes, cached) or Basic (stored credentials).
    /// Network failures become <see cref="RegistryErrorKind.Unreachable"/>; HTTP errors are returned.</summary>
    private async Task<HttpResponseMessage> SendAsync(string registry, Func<HttpRequestMessage> make, string[] scopes,
        CancellationToken ct, RegistryCredentials? credsOverride = null)
    {
        RegistryCredentials? creds = credsOverride ?? CredentialsFor(registry);
        string tokenKey = registry + "\n" + string.Join(' ', scopes.Order(StringComparer.Ordinal));
        HttpRequestMessage req = make();
        Authorize(req, registry, tokenKey, creds, credsOverride is not null);
        HttpResponseMessage resp = await SendFollowingRedirects(registry, req, ct).ConfigureAwait(false);
        if (resp.StatusCode != HttpStatusCode.Unauthorized) return resp;

        string? header = resp.Headers.TryGetValues("WWW-Authenticate", out var vals) ? string.Join(", ", vals) : null;
        if (header is null || !AuthChallenge.TryParseAll(header, out IReadOnlyList<AuthChallenge>? challenges, out _)) return resp;
        AuthChallenge? bearer = challenges.FirstOrDefault(c => c.IsBearer);
        AuthChallenge? basic = challenges.FirstOrDefault(c => c.IsBasic);
        if (bearer is not null)
        {
            _authScheme[registry] = "Bearer";
            var all = new List<string>(scopes);
            if (bearer.Scope is string s)
                foreach (string one in s.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                    if (!all.Contains(one)) all.Add(one);
            string token;
            int lifetime;
            try { (token, lifetime) = await FetchTokenAsync(registry, bearer, all, creds, ct).ConfigureAwait(false); }
            catch { resp.Dispose(); throw; }
            // Refreshed a little early; the spec's default lifetime is 60 s.
            _tokens[tokenKey] = (token, DateTimeOffset.UtcNow.AddSeconds(Math.Max(lifetime, 60) - 10));
            resp.Dispose();
            req = make();
            req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            return await SendFollowingRedirects(registry, req, ct).ConfigureAwait(false);
        }
        if (basic is not null && creds is not null && req.Headers.Authorization?.Scheme != "Basic")
        {
            _authScheme[registry] = "Basic";
            resp.Dispose();
            req = make();
            req.Headers.Authorization = BasicHeader(creds);
            return await SendFollowingRedirects(registry, req, ct).ConfigureAwait(false);
        }
        return resp;
    }

    private void Authorize(HttpRequestMessage req, string registry, string tokenKey, RegistryCredentials? creds, bool fresh)
    {
        if (fresh) return;
        if (!_authScheme.TryGetValue(registry, out string? scheme)) return;
        if (scheme == "Basic" && creds is not null) req.Headers.Authorization = BasicHeader(creds);
        else if (scheme == "Bearer" && _tokens.TryGetValue(tokenKey, out var t) && t.Expires > DateTimeOffset.UtcNow)
            req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", t.Token);
    }

    private static AuthenticationHeaderValue BasicHeader(RegistryCredentials c) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{c.Username}:{c.Password}")));

    private async Task<(string Token, int Lifetime)> FetchTokenAsync(string registry, AuthChallenge challenge, List<string> scopes, RegistryCredentials? creds, CancellationToken ct)
    {
        if (challenge.Realm is not string realm || !Uri.TryCreate(realm, UriKind.Absolute, out Uri? realmUri) || realmUri.Scheme is not ("http" or "https"))
            throw new RegistryException(RegistryErrorKind.BadResponse, registry, $"registry {registry} sent a Bearer challenge without a usable realm URL (\"{Clean(challenge.Realm ?? "")}\")");
        var query = new StringBuilder(realmUri.Query.Length > 1 ? realmUri.Query[1..] : "");
        void Add(string k, string v) { if (query.Length > 0) query.Append('&'); query.Append(k).Append('=').Append(Uri.EscapeDataString(v)); }
        if (challenge.Service is string service) Add("service", service);
        foreach (string s in scopes) Add("scope", s);
        if (creds is not null) Add("account", creds.Username);
        var ub = new UriBuilder(realmUri) { Query = query.ToString() };
        using var req = new HttpRequestMessage(HttpMethod.Get, ub.Uri);
        if (creds is not null) req.Headers.Authorization = BasicHeader(creds);
        HttpResponseMessage resp;
        try { resp = await _http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false); }
        catch (HttpRequestException e) { throw Unreachable($"{registry} (token server {realmUri.Authority})", e); }
        using (resp)
        {
            if (resp.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
                throw new RegistryException(RegistryErrorKind.Unauthorized, registry,
                    creds is null
                        ? $"registry {registry} refused an anonymous token{await ErrorSuffix(resp, ct).ConfigureAwait(false)}; run `vessel login {registry}`"
                        : $"registry {registry} refused the credentials of \"{creds.Username}\"{await ErrorSuffix(resp, ct).ConfigureAwait(false)}; run `vessel login {registry}`",
                    (int)resp.StatusCode);
            if (!resp.IsSuccessStatusCode) throw await ErrorAsync(resp, registry, $"token request to {realmUri.Authority}", null, ct).ConfigureAwait(false);
            byte[] body = await ReadLimitedAsync(resp, 1024 * 1024, registry, "token response", ct).ConfigureAwait(false);
            TokenResponse? tr;
            try { tr = JsonSerializer.Deserialize(body, RegistryJsonContext.Default.TokenResponse); }
            catch (JsonException e) { throw new RegistryException(RegistryErrorKind.BadResponse, registry, $"token server {realmUri.Authority} sent invalid JSON: {Clean(e.Message)}", inner: e); }
            string? token = !string.IsNullOrEmpty(tr?.Token) ? tr.Token : tr?.AccessToken;
            if (string.IsNullOrEmpty(token))
                throw new RegistryException(RegistryErrorKind.BadResponse, registry, $"token server {realmUri.Authority} answered without a token");
            return (token, tr?.ExpiresIn ?? 60);
        }
    }

    private async Task<HttpResponseMessage> SendFollowingRedirects(string registry, HttpRequestMessage req, CancellationToken ct)
    {
        for (int hop = 0; ; hop++)
        {
            HttpResponseMessage resp;
            try { resp = await _http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false); }
            catch (HttpRequestException e) { req.Dispose(); throw Unreachable(registry, e); }
            catch (OperationCanceledException e) when (!ct.IsCancellationRequested) { req.Dispose(); throw Unreachable(registry, e); }
            int code = (int)resp.StatusCode;
            if (code is not (301 or 302 or 303 or 307 or 308) || resp.Headers.Location is null) { req.Dispose(); return resp; }
            if (hop >= 5) { resp.Dispose(); req.Dispose(); throw new RegistryException(RegistryErrorKind.BadResponse, registry, $"registry {registry}: too many redirects for {req.RequestUri}"); }
            if (req.Method != HttpMethod.Get && req.Method != HttpMethod.Head) { req.Dispose(); return resp; }
            Uri next = new(req.RequestUri!, resp.Headers.Location);
            resp.Dispose();
            var n = new HttpRequestMessage(req.Method, next);
            foreach (var h in req.Headers)
                if (!h.Key.Equals("Authorization", StringComparison.OrdinalIgnoreCase) || next.Authority == req.RequestUri!.Authority)
                    n.Headers.TryAddWithoutValidation(h.Key, h.Value);
            req.Dispose();
            req = n;
        }
    }

    private static RegistryException Unreachable(string registry, Exception e)
    {
        Exception inner = e;
        while (inner.InnerException is not null && inner is not SocketException) inner = inner.InnerException;
        string why = inner switch
        {
            SocketException se => se.SocketErrorCode switch
            {
                SocketError.HostNotFound or SocketError.NoData or SocketError.TryAgain => $"no such host ({se.Message})",
                SocketError.ConnectionRefused => "connection refused",
                _ => se.Message,
            },
            OperationCanceledException => "timed out",
            _ => inner.Message,
        };
        return new RegistryException(RegistryErrorKind.Unreachable, registry, $"cannot reach registry {registry}: {Clean(why)}", inner: e);
    }

    // ---------------------------------------------------------------- errors

    /// <summary>One line for a failed response: 401/403 → login hint, 404 → not found, 429 → Retry-After,
    /// else status and the registry's JSON error quoted.</summary>
    private async Task<RegistryException> ErrorAsync(HttpResponseMessage resp, string registry, string what, string? notFound, CancellationToken ct)
    {
        (string? code, string suffix) = await ErrorDetail(resp, ct).ConfigureAwait(false);
        int status = (int)resp.StatusCode;
        return status switch
        {
            401 or 403 => new RegistryException(RegistryErrorKind.Unauthorized, registry,
                $"{what}: not authorized by {registry}{suffix}; run `vessel login {registry}`", status, errorCode: code),
            404 when notFound is not null => new RegistryException(RegistryErrorKind.NotFound, registry, notFound + suffix, status, errorCode: code),
            429 => new RegistryException(RegistryErrorKind.RateLimited, registry,
                $"{what}: registry {registry} is rate-limiting requests{RetryAfterText(resp, out TimeSpan? ra)}{suffix}", status, ra, code),
            _ => new RegistryException(status == 404 ? RegistryErrorKind.NotFound : RegistryErrorKind.BadResponse, registry,
                $"{what}: registry {registry} answered {status} {Clean(resp.ReasonPhrase ?? "")}{suffix}".Replace("  ", " "), status, errorCode: code),
        };
    }

    private static string RetryAfterText(HttpResponseMessage resp, out TimeSpan? retryAfter)
    {
        retryAfter = resp.Headers.RetryAfter?.Delta
            ?? (resp.Headers.RetryAfter?.Date is DateTimeOffset d ? d - DateTimeOffset.UtcNow : null);
        if (retryAfter is TimeSpan t && t < TimeSpan.Zero) retryAfter = TimeSpan.Zero;
        return retryAfter is TimeSpan r ? $" (retry after {Math.Ceiling(r.TotalSeconds)}s)" : "";
    }

    private async Task<string> ErrorSuffix(HttpResponseMessage resp, CancellationToken ct) => (await ErrorDetail(resp, ct).ConfigureAwait(false)).Suffix;

    /// <summary>The registry's <c>{"errors":[{"code","message"}]}</c> as <c>: CODE "message"</c>; a non-JSON body
    /// is not quoted (it is usually an HTML error page).</summary>
    private static async Task<(string? Code, string Suffix)> ErrorDetail(HttpResponseMessage resp, CancellationToken ct)
    {
        byte[] body;
        try { body = await ReadLimitedAsync(resp, 64 * 1024, "", "", ct, truncate: true).ConfigureAwait(false); }
        catch (Exception e) when (e is IOException or HttpRequestException or RegistryException) { return (null, ""); }
        if (body.Length == 0) return (null, "");
        ErrorBody? eb;
        try { eb = JsonSerializer.Deserialize(body, RegistryJsonContext.Default.ErrorBody); }
        catch (JsonException) { return (null, ""); }
        if (eb?.Errors is not { Count: > 0 } errors) return (null, "");
        string text = string.Join("; ", errors.Take(3).Select(e =>
            $"{Clean(e.Code ?? "UNKNOWN")} \"{Clean(e.Message ?? "")}\""));
        return (errors[0].Code, $": {text}");
    }

    /// <summary>Reads a whole (small) body, refusing more than <paramref name="max"/> bytes.</summary>
    private static async Task<byte[]> ReadLimitedAsync(HttpResponseMessage resp, long max, string registry, string what, CancellationToken ct, bool truncate = false)
    {
        if (!truncate && resp.Content.Headers.ContentLength is long cl && cl > max)
            throw new RegistryException(RegistryErrorKind.BadResponse, registry, $"registry {registry}: {what} is {cl} bytes, more than the {max} allowed");
        await using Stream s = await resp.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        var ms = new MemoryStream();
        byte[] buf = new byte[16384];
        int n;
        while ((n = await s.ReadAsync(buf, ct).ConfigureAwait(false)) > 0)
        {
            if (ms.Length + n > max)
            {
                if (truncate) { ms.Write(buf, 0, (int)(max - ms.Length)); break; }
                throw new RegistryException(RegistryErrorKind.BadResponse, registry, $"registry {registry}: {what} is larger than the {max} bytes allowed");
            }
            ms.Write(buf, 0, n);
        }
        return ms.ToArray();
    }

    /// <summary>Makes registry-supplied text safe for a one-line message: no control characters, bounded.</summary>
    internal static string Clean(string s)
    {
        var sb = new StringBuilder(Math.Min(s.Length, 200));
        foreach (char c in s)
        {
            if (sb.Length >= 200) { sb.Append("..."); break; }
            sb.Append(char.IsControl(c) ? ' ' : c);
        }
        return sb.ToString().Trim();
    }
}
