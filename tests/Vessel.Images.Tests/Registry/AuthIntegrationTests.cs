using Vessel.Images.Content;
using Vessel.Images.Oci;
using Vessel.Images.References;
using Vessel.Images.Registry;

namespace Vessel.Images.Tests.Registry;

/// <summary>A registry with htpasswd (bcrypt) Basic auth, the htpasswd file made by apache2-utils' htpasswd -B.</summary>
public sealed class BasicAuthRegistryFixture : IDisposable
{
    private readonly TempDir _dir = new();
    public RegistryProcess Registry { get; }
    public const string User = "vessel";
    public const string Password = "s3cret pass";

    public BasicAuthRegistryFixture()
    {
        string htpasswd = Path.Combine(_dir.Path, "htpasswd");
        var (code, stdout, err) = Cli.Run("htpasswd", "-Bbn", User, Password);
        if (code != 0) throw new InvalidOperationException($"htpasswd failed: {err}");
        File.WriteAllBytes(htpasswd, stdout);
        Registry = new RegistryProcess($"  htpasswd:\n    realm: vessel-test\n    path: {htpasswd}\n");
    }

    public void Dispose()
    {
        Registry.Dispose();
        _dir.Dispose();
    }
}

public sealed class BasicAuthTests(BasicAuthRegistryFixture fixture) : IClassFixture<BasicAuthRegistryFixture>, IDisposable
{
    private readonly TempDir _tmp = new();
    private readonly RegistryProcess _reg = fixture.Registry;
    public void Dispose() => _tmp.Dispose();
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private RegistryClient Client(ContentStore store, CredentialStore? creds) =>
        new(store, new ReferenceStore(store), new RegistryOptions { Credentials = creds });

    [Fact]
    public async Task LoginVerifiesStoresAndLogoutForgets()
    {
        var store = new ContentStore(_tmp.Sub("store"));
        string authPath = Path.Combine(_tmp.Path, "config", "vessel", "auth.json");
        var creds = new CredentialStore(authPath, dockerConfigPath: "");
        ImageRef image = ImageRef.Parse($"{_reg.Host}/auth/busybox:1");
        var (manifest, _) = TestImages.Busybox(store, "auth");

        // Anonymous: refused with a hint.
        using (RegistryClient anon = Client(store, creds))
        {
            var e = await Assert.ThrowsAsync<RegistryException>(() => anon.PushAsync(manifest, image, null, Ct));
            Assert.Equal(RegistryErrorKind.Unauthorized, e.Kind);
            Assert.StartsWith($"push {image}: blob sha256:", e.Message);
            Assert.EndsWith($"; run `vessel login {_reg.Host}`", e.Message);
            var p = await Assert.ThrowsAsync<RegistryException>(() => anon.PullAsync(image, null, Ct));
            Assert.Equal($"pull {image}: not authorized by {_reg.Host}: UNAUTHORIZED \"authentication required\"; run `vessel login {_reg.Host}`", p.Message);

            // Wrong password: a clear line, nothing stored.
            var w = await Assert.ThrowsAsync<RegistryException>(() => anon.LoginAsync(_reg.Host, new RegistryCredentials(BasicAuthRegistryFixture.User, "wrong"), Ct));
            Assert.Equal(RegistryErrorKind.Unauthorized, w.Kind);
            Assert.StartsWith($"login to {_reg.Host} failed: wrong username or password for \"vessel\"", w.Message);
            Assert.False(File.Exists(authPath));

            await anon.LoginAsync(_reg.Host, new RegistryCredentials(BasicAuthRegistryFixture.User, BasicAuthRegistryFixture.Password), Ct);
        }
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(authPath));
        Assert.Equal(BasicAuthRegistryFixture.User, creds.Get(_reg.Host)!.Username);

        // A new client (new process, say) uses the stored credentials.
        using (RegistryClient c = Client(store, new CredentialStore(authPath, "")))
        {
            await c.PingAsync(_reg.Host, Ct);
            Assert.Equal(manifest.Digest, await c.PushAsync(manifest, image, null, Ct));
        }
        var dst = new ContentStore(_tmp.Sub("dst"));
        using (RegistryClient c = Client(dst, new CredentialStore(authPath, "")))
            Assert.Equal(manifest.Digest, (await c.PullAsync(image, null, Ct)).Target.Digest);

        // Stored but wrong credentials: unauthorized on pull, with the login hint.
        new CredentialStore(authPath, "").Save(_reg.Host, new RegistryCredentials(BasicAuthRegistryFixture.User, "changed"));
        using (RegistryClient c = Client(new ContentStore(_tmp.Sub("dst2")), new CredentialStore(authPath, "")))
        {
            var e = await Assert.ThrowsAsync<RegistryException>(() => c.PullAsync(image, null, Ct));
            Assert.Equal(RegistryErrorKind.Unauthorized, e.Kind);
            Assert.EndsWith($"; run `vessel login {_reg.Host}`", e.Message);
            Assert.True(c.Logout(_reg.Host));
            Assert.False(c.Logout(_reg.Host));
        }
        Assert.Null(new CredentialStore(authPath, "").Get(_reg.Host));
    }
}
