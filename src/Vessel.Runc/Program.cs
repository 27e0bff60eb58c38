using System.Runtime.InteropServices;
using System.Text.Json;
using Vessel.Linux;
using Vessel.Runtime;
using Vessel.Runtime.Spec;

namespace Vessel.Runc;

/// <summary>vessel-runc: the runc command line over Vessel's runtime. Every failure is one line on
/// stderr (and in --log), exit status 1 — or 127/126 when the container's command is missing or not
/// executable, as podman and docker expect.</summary>
public static class Program
{
    public const string Version = "0.1.0";

    private static readonly Flag[] GlobalFlags =
    [
        Flag.Value("root"), Flag.Value("log"), Flag.Value("log-format"), Flag.Bool("debug"),
        Flag.Bool("systemd-cgroup"), Flag.Value("rootless"), Flag.Value("criu"), Flag.Bool("help", "h"), Flag.Bool("version", "v"),
    ];

    public static int Main(string[] args)
    {
        RuncLog log = new(null, "text", false);
        try
        {
            var global = CommandLine.Parse(args, GlobalFlags);
            log = new RuncLog(global.Value("log"), global.Value("log-format") ?? "text", global.Bool("debug"));
            if (global.Bool("version")) return PrintVersion();
            if (global.Bool("help") || global.Positional.Count == 0) return Help();
            if (global.Bool("systemd-cgroup"))
                throw new RuntimeException("--systemd-cgroup: the systemd cgroup driver is not supported; use cgroupfs paths in linux.cgroupsPath");
            var root = global.Value("root") ?? "/run/vessel-runc";
            var command = global.Positional[0];
            var rest = global.Positional.Skip(1).ToList();
            var runtime = new ContainerRuntime(root, log.Warn);
            log.Debug($"{command} {string.Join(' ', rest)}");
            return Commands.Run(command, rest, runtime, log);
        }
        catch (UsageException e)
        {
            log.Error(e.Message);
            return 1;
        }
        catch (SpecException e)
        {
            log.Error($"config.json: {e.Message}");
            return 1;
        }
        catch (RuntimeException e)
        {
            log.Error(e.Message);
            return e.ExitCode;
        }
        catch (LinuxException e)
        {
            log.Error(e.Message);
            return 1;
        }
        catch (IOException e)
        {
            log.Error(e.Message);
            return 1;
        }
        catch (UnauthorizedAccessException e)
        {
            log.Error(e.Message);
            return 1;
        }
    }

    private static int PrintVersion()
    {
        Console.WriteLine($"vessel-runc version {Version}");
        Console.WriteLine($"spec: {SpecVersion.Current}");
        Console.WriteLine($"runtime: .NET {Environment.Version} ({RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant()}, NativeAOT)");
        return 0;
    }

    private static int Help()
    {
        Console.WriteLine("""
            Usage: vessel-runc [global options] COMMAND [options] [arguments]

            Vessel's OCI runtime: runs containers from OCI bundles (config.json + rootfs), with runc's command line.

            Commands:
              spec        write a default config.json (--rootless for a user-namespace variant)
              create      create a container; its process waits for `start`
              start       run the process of a created container
              run         create, start and wait for a container; exits with its status
              state       print a container's state as JSON
              list, ls    list containers (--format table|json, --quiet)
              kill        send a signal (default SIGTERM) to the container's init, or --all processes
              delete      delete a stopped container (--force kills a running one)
              exec        run another process in a running container
              ps          list the container's processes (--format table|json)
              pause       freeze every process of the container
              resume      thaw a paused container
              update      change resource limits (--resources FILE|-, or the individual flags)
              events      print stats (--stats once, or every --interval) and OOM events
              features    print what this runtime supports, as JSON

            Global options:
              --root DIR           state directory (default /run/vessel-runc)
              --log FILE           log file (default stderr)
              --log-format FORMAT  text or json
              --debug              log debug messages
              --systemd-cgroup     not supported: cgroupfs paths only
              --version, -v        print the version
            """);
        return 0;
    }
}
