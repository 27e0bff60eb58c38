using System.Text;
using System.Text.Json;
using Vessel.Images.Content;
using Vessel.Images.Interop;
using Vessel.Images.References;

namespace Vessel.Images.Registry;

public sealed record RegistryCredentials(string Username, string Password)
{
    public override string ToString() => $"{Username}:***"; // never print the password
}

/// <summary>Registry credentials in docker's config.json format (<c>{"auths":{"host":{"auth":"base64(user:pass)"}}}</c>)
/// in a file Vessel owns (default <c>/root/.config/vessel/auth.json</c>), rewritten atomically with mode 0600 under
/// an flock. Lookups fall back to docker's <c>~/.docker/config.json</c> (read only; credential helpers are not
/// run). Keys are matched by host: "https://host/v1/", "http://host" and "host" are the same registry, and
/// docker.io also answers to "https://index.docker.io/v1/" and "registry-1.docker.io".</summary>
public sealed class CredentialStore
{
    public const string DefaultPath = "/root/.config/vessel/auth.json";

    public string Path { get; }
    public string? DockerConfigPath { get; }

    /// <param name="path">Vessel's own file.</param>
    /// <param name="dockerConfigPath">docker's config.json to fall back to; default <c>$DOCKER_CONFIG/config.json</c>
    /// or <c>~/.docker/config.json</c>; "" disables the fallback.</param>
    public CredentialStore(string? path = null, string? dockerConfigPath = null)
    {
        Path = System.IO.Path.GetFullPath(path ?? DefaultPath);
        if (dockerConfigPath is null)
        {
            string? dc = Environment.GetEnvironmentVariable("DOCKER_CONFIG");
            string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            dockerConfigPath = !string.IsNullOrEmpty(dc) ? System.IO.Path.Combine(dc, "config.json")
                : string.IsNullOrEmpty(home) ? "" : System.IO.Path.Combine(home, ".docker", "config.json");
        }
        DockerConfigPath = dockerConfigPath.Length == 0 ? null : dockerConfigPath;
    }

    /// <summary>Credentials for a registry host ("docker.io", "localhost:5000"), or null.</summary>
    public RegistryCredentials? Get(string registry)
    {
        string key = NormalizeKey(registry);
        RegistryCredentials? own = Find(Load(Path), key, Path);
        if (own is not null) return own;
        if (DockerConfigPath is null) return null;
        try { return Find(Load(DockerConfigPath), key, DockerConfigPath); }
        catch (ContentException) { return null; } // a broken docker config must not break Vessel
    }

    /// <summary>Stores credentials (replacing any for the same host).</summary>
    public void Save(string registry, RegistryCredentials credentials)
    {
        if (credentials.Username.Contains(':')) throw new ArgumentException("a registry username cannot contain ':'", nameof(credentials));
        string key = NormalizeKey(registry);
        Update(file =>
        {
            file.Auths ??= new Dictionary<string, AuthEntry>(StringComparer.Ordinal);
            foreach (string k in file.Auths.Keys.Where(k => NormalizeKey(k) == key).ToList()) file.Auths.Remove(k);
            file.Auths[key] = new AuthEntry { Auth = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{credentials.Username}:{credentials.Password}")) };
            return true;
        });
    }

    /// <summary>Forgets a registry's credentials (in Vessel's file only); false if there were none.</summary>
    public bool Remove(string registry)
    {
        string key = NormalizeKey(registry);
        bool removed = false;
        Update(file =>
        {
            if (file.Auths is null) return false;
            foreach (string k in file.Auths.Keys.Where(k => NormalizeKey(k) == key).ToList()) removed |= file.Auths.Remove(k);
            return removed;
        });
        return removed;
    }

    /// <summary>"https://index.docker.io/v1/" → "docker.io"; "http://Host:5000/x" → "host:5000".</summary>
    public static string NormalizeKey(string registry)
    {
        string k = registry.Trim();
        int scheme = k.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0) k = k[(scheme + 3)..];
        int slash = k.IndexOf('/');
        if (slash >= 0) k = k[..slash];
        k = k.ToLowerInvariant();
        return k is "index.docker.io" or ImageRef.DockerHubApiHost ? ImageRef.DockerHub : k;
    }

    private static RegistryCredentials? Find(AuthFile? file, string key, string path)
    {
        if (file?.Auths is null) return null;
        foreach ((string k, AuthEntry e) in file.Auths)
        {
            if (NormalizeKey(k) != key) continue;
            if (!string.IsNullOrEmpty(e.Auth))
            {
                string decoded;
                try { decoded = Encoding.UTF8.GetString(Convert.FromBase64String(e.Auth)); }
                catch (FormatException) { throw new ContentException($"credentials file {path}: \"auth\" of {k} is not valid base64"); }
                int colon = decoded.IndexOf(':');
                if (colon < 0) throw new ContentException($"credentials file {path}: \"auth\" of {k} is not base64(user:password)");
                return new RegistryCredentials(decoded[..colon], decoded[(colon + 1)..]);
            }
            if (!string.IsNullOrEmpty(e.Username) && e.Password is not null) return new RegistryCredentials(e.Username, e.Password);
        }
        return null;
    }

    private static AuthFile? Load(string path)
    {
        byte[] json;
        try { json = File.ReadAllBytes(path); }
        catch (FileNotFoundException) { return null; }
        catch (DirectoryNotFoundException) { return null; }
        try { return JsonSerializer.Deserialize(json, RegistryJsonContext.Default.AuthFile); }
        catch (JsonException e) { throw new ContentException($"credentials file {path} is not valid JSON: {e.Message}", e); }
    }

    private void Update(Func<AuthFile, bool> change)
    {
        string dir = System.IO.Path.GetDirectoryName(Path)!;
        if (!Directory.Exists(dir)) Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        using FileStream lockFile = FileLock.Open(Path + ".lock", 0x180 /* 0600 */);
        FileLock.Acquire(lockFile, Path + ".lock");
        try
        {
            AuthFile file = Load(Path) ?? new AuthFile();
            if (!change(file)) return;
            AtomicFile.WriteAllBytes(Path, JsonSerializer.SerializeToUtf8Bytes(file, RegistryJsonContext.Default.AuthFile)); // 0600
        }
        finally
        {
            Libc.flock((int)lockFile.SafeFileHandle.DangerousGetHandle(), Libc.LOCK_UN);
        }
    }
}

internal static class FileLock
{
    public const int LOCK_NB = 4;
    private const int O_RDWR = 2;

    /// <summary>Opens (creating) a file for flock without .NET's own advisory locking: FileStream's open takes a
    /// LOCK_SH|LOCK_NB itself and throws if another process holds our LOCK_EX.</summary>
    public static FileStream Open(string path, uint mode)
    {
        int fd = Libc.openat(Libc.AT_FDCWD, path, O_RDWR | Libc.O_CREAT | Libc.O_NOFOLLOW, mode);
        if (fd < 0) throw new IOException($"open {path}: {Libc.StrError(Libc.Errno)}");
        return new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true), FileAccess.ReadWrite, 1);
    }

    /// <summary>Blocking exclusive flock (for short critical sections).</summary>
    public static void Acquire(FileStream fs, string what)
    {
        int fd = (int)fs.SafeFileHandle.DangerousGetHandle();
        while (Libc.flock(fd, Libc.LOCK_EX) != 0)
            if (Libc.Errno != Libc.EINTR) throw new IOException($"flock {what}: {Libc.StrError(Libc.Errno)}");
    }

    /// <summary>Exclusive flock without blocking a thread: polls until it is free.</summary>
    public static async Task AcquireAsync(FileStream fs, string what, CancellationToken ct)
    {
        int fd = (int)fs.SafeFileHandle.DangerousGetHandle();
        int delay = 10;
        while (Libc.flock(fd, Libc.LOCK_EX | LOCK_NB) != 0)
        {
            int errno = Libc.Errno;
            if (errno == Libc.EINTR) continue;
            if (errno != Libc.EAGAIN) throw new IOException($"flock {what}: {Libc.StrError(errno)}");
            await Task.Delay(delay, ct).ConfigureAwait(false);
            delay = Math.Min(delay * 2, 200);
        }
    }

    public static void Release(FileStream fs) => Libc.flock((int)fs.SafeFileHandle.DangerousGetHandle(), Libc.LOCK_UN);

    /// <summary>Inode of an open file and of a path (0 when the path is gone): the lock holder may have
    /// renamed the file we locked.</summary>
    public static ulong InodeOf(FileStream fs)
    {
        int fd = (int)fs.SafeFileHandle.DangerousGetHandle();
        return Libc.statx(fd, "", Libc.AT_EMPTY_PATH, Libc.STATX_BASIC_STATS, out Libc.Statx st) == 0 ? st.Ino : 0;
    }

    public static ulong InodeOf(string path) =>
        Libc.statx(Libc.AT_FDCWD, path, Libc.AT_SYMLINK_NOFOLLOW, Libc.STATX_BASIC_STATS, out Libc.Statx st) == 0 ? st.Ino : 0;
}
