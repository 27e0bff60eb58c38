using System.Net.Sockets;
using System.Text;
using Vessel.Api;
using Vessel.Daemon;
using Microsoft.AspNetCore.Hosting;
using Vessel.Engine;

namespace Vessel.Daemon
{
    internal sealed record DaemonOptions(string Socket, string Root, string RunRoot, string? Group, bool Debug,
        IReadOnlyList<string> InsecureRegistries, string? AuthFile, string? DockerSocket, Vessel.Engine.Networks.NetworkOptions Network);

    internal static class Daemon
    {
        private const string Usage = """
            Usage:  vesseld [OPTIONS]

            The Vessel daemon: serves the Vessel API on a Unix socket.

            Options:
                  --socket PATH     API socket (default /run/vessel/vessel.sock, or $VESSEL_RUN_ROOT/vessel.sock)
                  --group NAME      group that may use the socket (mode 0660, owned by root:NAME)
                  --root DIR        state directory (default $VESSEL_ROOT or /var/lib/vessel)
                  --run-root DIR    runtime state directory (default $VESSEL_RUN_ROOT or /run/vessel)
                  --insecure-registry HOST[:PORT]
                                    reach this registry over plain HTTP (repeatable; registries
                                    on 127.0.0.0/8, ::1 and localhost always are)
                  --auth-file PATH  registry credentials kept by login (docker config.json format;
                                    default /root/.config/vessel/auth.json)
                  --nft-table NAME  nftables table (family inet) for NAT and published ports
                                    (default vessel; one per daemon)
                  --bridge NAME     the default network's bridge device (default vessel0)
                  --bridge-subnet CIDR
                                    the default network's subnet (default: the first of 172.17-31.0.0/16,
                                    192.168.0-240.0/20 that clashes with no route of the host)
                  --docker-socket PATH
                                    serve the Docker Engine API here (default RUN-ROOT/docker.sock,
                                    i.e. /run/vessel/docker.sock; "" turns it off)
              -D, --debug           log every request
              -v, --version         print the version and exit
              -h, --help            print this help
            """;

        public static async Task<int> Main(string[] args)
        {
            return await Start(args);
        }

        private static async Task<int> Start(string[] args)
        {
            DaemonOptions o;
            try
            {
                DaemonOptions? parsed = Parse(args);
                if (parsed is null) return 0;
                o = parsed;
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine($"vesseld: {e.Message}\nSee 'vesseld --help'.");
                return 125;
            }
            try
            {
                return await Run(o);
            }
            catch (Exception e) when (e is EngineException or IOException or UnauthorizedAccessException or InvalidOperationException)
            {
                Console.Error.WriteLine($"vesseld: {e.Message.ReplaceLineEndings(" ")}");
                return 1;
            }
        }

        private static DaemonOptions? Parse(string[] args)
        {
            string socket = ApiInfo.DefaultSocket, root = ApiInfo.DefaultRoot, runRoot = ApiInfo.DefaultRunRoot;
            string? group = null, authFile = null, dockerSocket = null, bridgeSubnet = null;
            string nftTable = "vessel", bridge = "vessel0";
            bool debug = false;
            var insecure = new List<string>();
            for (int i = 0; i < args.Length; i++)
            {
                string a = args[i];
                string? inline = null;
                int eq = a.IndexOf('=');
                if (a.StartsWith("--", StringComparison.Ordinal) && eq > 0) { inline = a[(eq + 1)..]; a = a[..eq]; }
                string Value() => inline ?? (i + 1 < args.Length ? args[++i] : throw new ArgumentException($"flag needs an argument: {a}"));
                switch (a)
                {
                    case "--socket": socket = Value(); break;
                    case "--group": group = Value(); break;
                    case "--root": root = Value(); break;
                    case "--run-root": runRoot = Value(); break;
                    case "--insecure-registry":
                        string reg = Value();
                        if (reg.Length == 0 || reg.Contains('/') || reg.Any(char.IsWhiteSpace))
                            throw new ArgumentException($"--insecure-registry {reg}: expected HOST[:PORT]");
                        insecure.Add(reg);
                        break;
                    case "--auth-file": authFile = Path.GetFullPath(Value()); break;
                    case "--nft-table": nftTable = Value(); break;
                    case "--bridge":
                        bridge = Value();
                        if (bridge.Length is 0 or > 15 || bridge.Any(c => c is '/' or ':' || char.IsWhiteSpace(c)))
                            throw new ArgumentException($"--bridge {bridge}: not a valid interface name (1-15 characters)");
                        break;
                    case "--bridge-subnet":
                        bridgeSubnet = Value();
                        if (!Vessel.Network.Cidr.TryParse(bridgeSubnet, out _)) throw new ArgumentException($"--bridge-subnet {bridgeSubnet}: expected an IPv4 CIDR");
                        break;
                    case "--docker-socket": dockerSocket = Value(); break;
                    case "-D" or "--debug": debug = true; break;
                    case "-h" or "--help": Console.WriteLine(Usage); return null;
                    case "-v" or "--version": Console.WriteLine($"vesseld version {ApiInfo.Version}, API {ApiInfo.ApiVersion}"); return null;
                    default: throw new ArgumentException(a.StartsWith('-') ? $"unknown flag: {a}" : $"unexpected argument: {a}");
                }
                if (a is "--socket" or "--root" or "--run-root" && string.IsNullOrEmpty(a == "--socket" ? socket : a == "--root" ? root : runRoot))
                    throw new ArgumentException($"{a} needs a non-empty path");
            }
            if (nftTable.Length is 0 or > 64 || !nftTable.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
                throw new ArgumentException($"--nft-table {nftTable}: letters, digits, _ and - only");
            runRoot = Path.GetFullPath(runRoot);
            dockerSocket = dockerSocket is null ? Path.Combine(runRoot, "docker.sock") : dockerSocket.Length == 0 ? null : Path.GetFullPath(dockerSocket);
            return new DaemonOptions(Path.GetFullPath(socket), Path.GetFullPath(root), runRoot, group, debug, insecure, authFile, dockerSocket,
                new Vessel.Engine.Networks.NetworkOptions { Table = nftTable, DefaultBridge = bridge, DefaultSubnet = bridgeSubnet });
        }

        private static async Task<int> Run(DaemonOptions o)
        {
            uint? gid = null;
            if (o.Group is not null)
                gid = Native.GroupId(o.Group) ?? throw new InvalidOperationException($"--group {o.Group}: no such group");
            Directory.CreateDirectory(o.RunRoot, (UnixFileMode)0x1ed);
            Directory.CreateDirectory(Path.GetDirectoryName(o.Socket)!, (UnixFileMode)0x1ed);

            // One daemon per run root (vesseld.lock stays flocked while we live) and per socket (connect test).
            // The lock is a file of its own: .NET readers of the pid file would trip over an flock on it.
            string pidPath = Path.Combine(o.RunRoot, "vesseld.pid");
            using var lockFile = new FileStream(Path.Combine(o.RunRoot, "vesseld.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite);
            if (Native.Flock((int)lockFile.SafeFileHandle.DangerousGetHandle(), Native.LOCK_EX | Native.LOCK_NB) != 0)
            {
                string other = File.Exists(pidPath) ? File.ReadAllText(pidPath).Trim() : "";
                throw new InvalidOperationException($"another vesseld{(other.Length > 0 ? $" (pid {other})" : "")} is running with run root {o.RunRoot}");
            }
            if (IsServing(o.Socket))
                throw new InvalidOperationException($"another vesseld is already serving {o.Socket}");
            if (File.Exists(o.Socket)) File.Delete(o.Socket); // stale: nobody answers on it
            string tmpPid = pidPath + ".tmp";
            File.WriteAllText(tmpPid, $"{Environment.ProcessId}\n");
            File.Move(tmpPid, pidPath, overwrite: true);

            var provider = new LineLoggerProvider();
            ILogger log = provider.CreateLogger("Vessel.Daemon");
            await using VesselEngine engine = VesselEngine.Open(new EngineOptions
            {
                Root = o.Root, RunRoot = o.RunRoot, Socket = o.Socket, Log = m => log.LogInformation("{Message}", m),
                InsecureRegistries = o.InsecureRegistries, AuthFile = o.AuthFile, Network = o.Network,
            });

            var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = o.RunRoot });
            builder.Logging.ClearProviders();
            builder.Logging.AddProvider(provider);
            builder.Logging.SetMinimumLevel(o.Debug ? LogLevel.Debug : LogLevel.Information);
            builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
            builder.Logging.AddFilter("System", LogLevel.Warning);
            builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(10));
            builder.WebHost.ConfigureKestrel(k =>
            {
                k.ListenUnixSocket(o.Socket);
                k.AddServerHeader = false;
            });
            WebApplication app = builder.Build();
            app.UseMiddleware<ErrorMiddleware>(o.Debug);
            ApiRoutes.Map(app, engine);
            ContainerRoutes.Map(app, engine);
            StdioRoutes.Map(app, engine);
            NetworkRoutes.Map(app, engine);
            VolumeRoutes.Map(app, engine);
            ContainerVerbRoutes.Map(app, engine);
            MachineRoutes.Map(app, engine);
            BuildRoutes.Map(app, engine);

            // The socket is created by Kestrel under our umask: 0117 makes it 0660 from the first instant.
            uint oldMask = Native.Umask(0x4f);
            try { await app.StartAsync(); }
            finally { Native.Umask(oldMask); }
            File.SetUnixFileMode(o.Socket, (UnixFileMode)0x1b0); // 0660
            if (Native.Chown(o.Socket, Native.GetEuid(), gid ?? uint.MaxValue) != 0)
                throw new IOException($"chown {o.Socket}: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");

            WebApplication? docker = o.DockerSocket is null ? null : await Vessel.DockerApi.DockerServer.StartAsync(engine,
                new Vessel.DockerApi.DockerServerOptions(o.DockerSocket, gid, provider, o.Debug), app.Lifetime.ApplicationStopping);

            engine.Events.Publish("daemon", "start", Environment.ProcessId.ToString(), "vesseld");
            log.LogInformation("vesseld {Version} (pid {Pid}) serving {Socket}{Docker}{Group}; root {Root}, run root {RunRoot}", ApiInfo.Version,
                Environment.ProcessId, o.Socket, o.DockerSocket is null ? "" : $" and the Docker API on {o.DockerSocket}",
                o.Group is null ? "" : $" for group {o.Group}", o.Root, o.RunRoot);

            await app.WaitForShutdownAsync();
            log.LogInformation("shutting down");
            if (docker is not null)
            {
                await docker.StopAsync();
                await docker.DisposeAsync();
                try { File.Delete(o.DockerSocket!); } catch (IOException) { }
            }
            await app.DisposeAsync();
            try { File.Delete(o.Socket); } catch (IOException) { }
            try { File.Delete(pidPath); } catch (IOException) { }
            log.LogInformation("stopped");
            return 0;
        }

        /// <summary>Does anything accept connections on <paramref name="path"/>? (ENOENT/ECONNREFUSED: no.)</summary>
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
    }
}
