using System.Text;
using System.Text.Json;
using Vessel.Images.Content;
using Vessel.Images.Registry;

namespace Vessel.Images.Tests.Registry;

public sealed class CredentialStoreTests : IDisposable
{
    private readonly TempDir _tmp = new();
    public void Dispose() => _tmp.Dispose();

    [Fact]
    public void SaveWritesDockerFormatAtomicallyWithMode0600()
    {
        string path = Path.Combine(_tmp.Path, "cfg", "vessel", "auth.json");
        var store = new CredentialStore(path, dockerConfigPath: "");
        Assert.Null(store.Get("localhost:5000"));
        store.Save("http://LocalHost:5000/v2/", new RegistryCredentials("alice", "p:ss wörd"));

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        using (var doc = JsonDocument.Parse(File.ReadAllBytes(path)))
        {
            string auth = doc.RootElement.GetProperty("auths").GetProperty("localhost:5000").GetProperty("auth").GetString()!;
            Assert.Equal("alice:p:ss wörd", Encoding.UTF8.GetString(Convert.FromBase64String(auth)));
        }
        Assert.Equal(new RegistryCredentials("alice", "p:ss wörd"), store.Get("localhost:5000"));
        Assert.DoesNotContain(Directory.GetFiles(Path.GetDirectoryName(path)!), f => Path.GetFileName(f).StartsWith(".tmp", StringComparison.Ordinal));

        store.Save("localhost:5000", new RegistryCredentials("bob", "x"));
        Assert.Equal("bob", store.Get("localhost:5000")!.Username);
        Assert.True(store.Remove("localhost:5000"));
        Assert.False(store.Remove("localhost:5000"));
        Assert.Null(store.Get("localhost:5000"));
        Assert.Equal("x", new RegistryCredentials("u", "x").Password);
        Assert.DoesNotContain("x", new RegistryCredentials("u", "x").ToString().Replace("***", ""));
    }

    [Fact]
    public void KeepsUnknownFieldsAndOtherRegistries()
    {
        string path = Path.Combine(_tmp.Path, "auth.json");
        File.WriteAllText(path, """{"auths":{"other.io":{"auth":"dTpw","email":"x@y"}},"credsStore":"desktop"}""");
        var store = new CredentialStore(path, dockerConfigPath: "");
        store.Save("mine.io", new RegistryCredentials("me", "pw"));
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        Assert.Equal("desktop", doc.RootElement.GetProperty("credsStore").GetString());
        Assert.Equal("x@y", doc.RootElement.GetProperty("auths").GetProperty("other.io").GetProperty("email").GetString());
        Assert.Equal(new RegistryCredentials("u", "p"), store.Get("other.io"));
    }

    [Fact]
    public void FallsBackToDockerConfigIncludingHubAliases()
    {
        string docker = Path.Combine(_tmp.Path, "docker-config.json");
        string b64 = Convert.ToBase64String(Encoding.UTF8.GetBytes("hubuser:hubpass"));
        File.WriteAllText(docker, """{"auths":{"https://index.docker.io/v1/":{"auth":"B64"},"plain.io":{"username":"pu","password":"pp"}}}""".Replace("B64", b64));
        var store = new CredentialStore(Path.Combine(_tmp.Path, "vessel.json"), docker);
        Assert.Equal(new RegistryCredentials("hubuser", "hubpass"), store.Get("docker.io"));
        Assert.Equal(new RegistryCredentials("hubuser", "hubpass"), store.Get("registry-1.docker.io"));
        Assert.Equal(new RegistryCredentials("pu", "pp"), store.Get("plain.io"));
        // Vessel's own file wins; logout never touches docker's file.
        store.Save("docker.io", new RegistryCredentials("v", "w"));
        Assert.Equal("v", store.Get("docker.io")!.Username);
        Assert.True(store.Remove("docker.io"));
        Assert.Equal("hubuser", store.Get("docker.io")!.Username);
    }

    [Fact]
    public void CorruptFilesAreOneLineErrors()
    {
        string path = Path.Combine(_tmp.Path, "auth.json");
        File.WriteAllText(path, "{\"auths\":");
        var e = Assert.Throws<ContentException>(() => new CredentialStore(path, "").Get("x.io"));
        Assert.Contains($"credentials file {path} is not valid JSON", e.Message);
        File.WriteAllText(path, """{"auths":{"x.io":{"auth":"!!notbase64"}}}""");
        Assert.Contains("not valid base64", Assert.Throws<ContentException>(() => new CredentialStore(path, "").Get("x.io")).Message);
        // A broken docker config is ignored rather than breaking Vessel.
        string docker = Path.Combine(_tmp.Path, "docker.json");
        File.WriteAllText(docker, "garbage");
        Assert.Null(new CredentialStore(Path.Combine(_tmp.Path, "none.json"), docker).Get("x.io"));
    }
}
