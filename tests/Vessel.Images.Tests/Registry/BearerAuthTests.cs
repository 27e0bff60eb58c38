using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using Vessel.Images.Content;
using Vessel.Images.References;
using Vessel.Images.Registry;

namespace Vessel.Images.Tests.Registry;

/// <summary>The token server half of the distribution token-auth spec, for the real registry to trust: issues
/// ES256 JWTs (x5c = a self-signed certificate that the registry's rootcertbundle holds). Anonymous callers get
/// pull only; <see cref="User"/>/<see cref="Password"/> get pull and push.</summary>
public sealed class TokenServer : IDisposable
{
    public const string User = "tok";
    public const string Password = "tok-pass";
    public const string Issuer = "vessel-test-issuer";
    public const string Service = "vessel-test-registry";
    private readonly HttpListener _listener = new();
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly X509Certificate2 _cert;
    private readonly Task _loop;
    public int Port { get; }
    public ConcurrentQueue<string> Requests { get; } = new(); // "account|scopes"

    public TokenServer(string certPemPath)
    {
        var req = new CertificateRequest("CN=vessel-test-token", _key, HashAlgorithmName.SHA256);
        _cert = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddHours(1));
        File.WriteAllText(certPemPath, _cert.ExportCertificatePem());
        Port = RegistryProcess.FreePort();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _loop = Task.Run(async () =>
        {
            while (_listener.IsListening)
            {
                HttpListenerContext ctx;
                try { ctx = await _listener.GetContextAsync(); }
                catch (Exception) { return; }
                try { Handle(ctx); } catch (Exception) { ctx.Response.Abort(); }
            }
        });
    }

    public string Realm => $"http://127.0.0.1:{Port}/token";

    private void Handle(HttpListenerContext ctx)
    {
        string? account = null;
        string? auth = ctx.Request.Headers["Authorization"];
        if (auth is not null && auth.StartsWith("Basic ", StringComparison.Ordinal))
        {
            string up = Encoding.UTF8.GetString(Convert.FromBase64String(auth[6..]));
            if (up != $"{User}:{Password}")
            {
                Respond(ctx, 401, """{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}""");
                return;
            }
            account = User;
        }
        string[] scopes = ctx.Request.QueryString.GetValues("scope") ?? [];
        Requests.Enqueue($"{account}|{string.Join(' ', scopes)}");
        var access = new JsonArray();
        foreach (string scope in scopes)
        {
            string[] p = scope.Split(':');
            if (p.Length != 3) continue;
            var actions = new JsonArray();
            foreach (string a in p[2].Split(','))
                if (a == "pull" || (a == "push" && account is not null)) actions.Add((JsonNode)JsonValue.Create(a));
            access.Add((JsonNode)new JsonObject { ["type"] = p[0], ["name"] = p[1], ["actions"] = actions });
        }
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = new JsonObject { ["typ"] = "JWT", ["alg"] = "ES256", ["x5c"] = new JsonArray(Convert.ToBase64String(_cert.RawData)) };
        var claims = new JsonObject
        {
            ["iss"] = Issuer, ["sub"] = account ?? "", ["aud"] = Service, ["exp"] = now + 300, ["nbf"] = now - 10, ["iat"] = now,
            ["jti"] = Guid.NewGuid().ToString("N"), ["access"] = access,
        };
        string signing = B64(Encoding.UTF8.GetBytes(header.ToJsonString())) + "." + B64(Encoding.UTF8.GetBytes(claims.ToJsonString()));
        string jwt = signing + "." + B64(_key.SignData(Encoding.ASCII.GetBytes(signing), HashAlgorithmName.SHA256));
        Respond(ctx, 200, new JsonObject { ["token"] = jwt, ["expires_in"] = 300 }.ToJsonString());
    }

    private static string B64(byte[] b) => Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static void Respond(HttpListenerContext ctx, int status, string json)
    {
        byte[] b = Encoding.UTF8.GetBytes(json);
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        ctx.Response.ContentLength64 = b.Length;
        ctx.Response.OutputStream.Write(b);
        ctx.Response.Close();
    }

    public void Dispose()
    {
        try { _listener.Stop(); _listener.Close(); } catch (Exception) { }
        try { _loop.Wait(5000); } catch (Exception) { }
        _cert.Dispose();
        _key.Dispose();
    }
}

public sealed class BearerRegistryFixture : IDisposable
{
    private readonly TempDir _dir = new();
    public TokenServer Tokens { get; }
    public RegistryProcess Registry { get; }

    public BearerRegistryFixture()
    {
        string pem = Path.Combine(_dir.Path, "token-root.pem");
        Tokens = new TokenServer(pem);
        Registry = new RegistryProcess(
            $"  token:\n    realm: {Tokens.Realm}\n    service: {TokenServer.Service}\n    issuer: {TokenServer.Issuer}\n    rootcertbundle: {pem}\n");
    }

    public void Dispose()
    {
        Registry.Dispose();
        Tokens.Dispose();
        _dir.Dispose();
    }
}

public sealed class BearerAuthTests(BearerRegistryFixture fixture) : IClassFixture<BearerRegistryFixture>, IDisposable
{
    private readonly TempDir _tmp = new();
    public void Dispose() => _tmp.Dispose();
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TokenFlowWithScopesCachingAndLogin()
    {
        RegistryProcess reg = fixture.Registry;
        TokenServer tokens = fixture.Tokens;
        var store = new ContentStore(_tmp.Sub("src"));
        var (manifest, _) = TestImages.Busybox(store, "bearer");
        ImageRef image = ImageRef.Parse($"{reg.Host}/bearer/busybox:1");
        string authPath = Path.Combine(_tmp.Path, "auth.json");

        // Anonymous tokens only allow pull: the push is refused after one retry with a fresh token.
        using (var anon = new RegistryClient(store, new ReferenceStore(store), new RegistryOptions { Credentials = new CredentialStore(authPath, "") }))
        {
            await anon.PingAsync(reg.Host, Ct);
            var e = await Assert.ThrowsAsync<RegistryException>(() => anon.PushAsync(manifest, image, null, Ct));
            Assert.Equal(RegistryErrorKind.Unauthorized, e.Kind);
            Assert.EndsWith($"; run `vessel login {reg.Host}`", e.Message);

            var w = await Assert.ThrowsAsync<RegistryException>(() => anon.LoginAsync(reg.Host, new RegistryCredentials(TokenServer.User, "nope"), Ct));
            Assert.Equal($"registry {reg.Host} refused the credentials of \"tok\": UNAUTHORIZED \"bad credentials\"; run `vessel login {reg.Host}`", w.Message);
            Assert.False(File.Exists(authPath));
            await anon.LoginAsync(reg.Host, new RegistryCredentials(TokenServer.User, TokenServer.Password), Ct);
            Assert.Contains($"{TokenServer.User}|", tokens.Requests); // docker-login style: a token without scope
        }

        using (var c = new RegistryClient(store, new ReferenceStore(store), new RegistryOptions { Credentials = new CredentialStore(authPath, "") }))
            Assert.Equal(manifest.Digest, await c.PushAsync(manifest, image, null, Ct));

        // Anonymous pull: one token for the repository's pull scope, reused for the manifest and every blob.
        var dst = new ContentStore(_tmp.Sub("dst"));
        int before = tokens.Requests.Count;
        using (var c = new RegistryClient(dst, new ReferenceStore(dst)))
            Assert.Equal(manifest.Digest, (await c.PullAsync(image, null, Ct)).Target.Digest);
        List<string> during = tokens.Requests.Skip(before).ToList();
        Assert.Equal(["|repository:bearer/busybox:pull"], during);
    }
}
