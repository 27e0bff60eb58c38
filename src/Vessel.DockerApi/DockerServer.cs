using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Vessel.Engine;

namespace Vessel.DockerApi;

/// <summary>Where and how vesseld serves the Docker Engine API.</summary>
public sealed record DockerServerOptions(string Socket, uint? Gid, ILoggerProvider Logs, bool Debug);

/// <summary>The Docker Engine API (docs/docker-api.md): a second Kestrel app of vesseld, on its own Unix socket,
/// whose routes translate docker's wire format to the engine's services and back. Nothing here decides policy:
/// what the engine does not do is refused with docker's error shape (<c>{"message": …}</c>), status 501.</summary>
public static partial class DockerServer
{
    public const string ApiVersion = "1.41";
    public const string MinApiVersion = "1.24";
    private const int MaxMinor = 41, MinMinor = 24;

    public static async Task<WebApplication> StartAsync(VesselEngine engine, DockerServerOptions o, CancellationToken stopping)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(o.Socket)!, (UnixFileMode)0x1ed);
        if (IsServing(o.Socket)) throw new InvalidOperationException($"another daemon is already serving {o.Socket}");
        if (File.Exists(o.Socket)) File.Delete(o.Socket); // stale: nobody answers on it

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = engine.Options.RunRoot });
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(o.Logs);
        builder.Logging.SetMinimumLevel(o.Debug ? LogLevel.Debug : LogLevel.Information);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        builder.Logging.AddFilter("System", LogLevel.Warning);
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(10));
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.ListenUnixSocket(o.Socket, l => l.Use(HalfCloseConnection.Middleware));
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = null; // image loads, build contexts and archives are as large as they are
        });
        WebApplication app = builder.Build();
        app.UseMiddleware<DockerErrorMiddleware>(o.Debug);
        app.Use(VersionPrefix);
        app.UseRouting();
        var ctx = new DockerContext(engine, app.Lifetime.ApplicationStopping, stopping);
        SystemEndpoints.Map(app, ctx);
        ImageEndpoints.Map(app, ctx);
        ContainerEndpoints.Map(app, ctx);
        ExecEndpoints.Map(app, ctx);
        ContainerVerbEndpoints.Map(app, ctx);
        VolumeEndpoints.Map(app, ctx);
        NetworkEndpoints.Map(app, ctx);
        BuildEndpoint.Map(app, ctx);
        UnsupportedEndpoints.Map(app);

        uint oldMask = Umask(0x4f); // 0117: the socket is 0660 from the first instant
        try { await app.StartAsync(stopping); }
        finally { Umask(oldMask); }
        File.SetUnixFileMode(o.Socket, (UnixFileMode)0x1b0);
        if (o.Gid is uint gid && Chown(o.Socket, uint.MaxValue, gid) != 0)
            throw new IOException($"chown {o.Socket}: errno {Marshal.GetLastPInvokeError()}");
        return app;
    }

    [GeneratedRegex(@"^/v(\d+)\.(\d+)(/.*)$")]
    private static partial Regex VersionedPath();

    /// <summary>docker clients put the API version first (<c>/v1.41/containers/json</c>); the routes are mapped without it.
    /// Versions newer than ours or older than 1.24 are refused as dockerd refuses them.</summary>
    private static Task VersionPrefix(HttpContext ctx, Func<Task> next)
    {
        Match m = VersionedPath().Match(ctx.Request.Path.Value ?? "");
        if (m.Success)
        {
            string v = $"{m.Groups[1].Value}.{m.Groups[2].Value}";
            if (!int.TryParse(m.Groups[1].Value, out int major) || !int.TryParse(m.Groups[2].Value, out int minor))
                throw EngineException.Invalid($"bad API version {v}");
            if (major > 1 || (major == 1 && minor > MaxMinor))
                throw EngineException.Invalid($"client version {v} is too new. Maximum supported API version is {ApiVersion}");
            if (major < 1 || minor < MinMinor)
                throw EngineException.Invalid($"client version {v} is too old. Minimum supported API version is {MinApiVersion}, please upgrade your client to a newer version");
            ctx.Request.Path = m.Groups[3].Value;
        }
        return next();
    }

    private static bool IsServing(string path)
    {
        using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            s.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException) { return false; }
    }

    [LibraryImport("libc", EntryPoint = "umask")]
    private static partial uint Umask(uint mask);

    [LibraryImport("libc", EntryPoint = "chown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Chown(string path, uint owner, uint group);
}

/// <summary>What every endpoint needs: the engine and the daemon's shutdown token.</summary>
internal sealed class DockerContext(VesselEngine engine, CancellationToken appStopping, CancellationToken daemonStopping)
{
    public VesselEngine Engine { get; } = engine;
    public CancellationToken AppStopping { get; } = appStopping;
    public CancellationToken DaemonStopping { get; } = daemonStopping;

    /// <summary>A token for a long stream: ends when the client goes away or the daemon stops.</summary>
    public CancellationTokenSource Linked(HttpContext ctx) =>
        CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, AppStopping, DaemonStopping);

    /// <summary>For hijacked connections: Kestrel signals RequestAborted when the client half-closes (docker's CLI
    /// closes its side once stdin is done), yet the output must go on; a client that is really gone makes a write fail.</summary>
    public CancellationTokenSource Hijacked() => CancellationTokenSource.CreateLinkedTokenSource(AppStopping, DaemonStopping);
}
