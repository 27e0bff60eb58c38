using System.CommandLine;
using System.CommandLine.Help;
using System.Text.Json.Serialization;
using Vessel.Api;

namespace Vessel.Cli;

/// <summary>What `vessel version --format json` prints.</summary>
internal sealed record VersionOutput(ClientVersion Client, VersionResponse? Server);
internal sealed record ClientVersion(string Version, string ApiVersion, string Os, string Arch);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(VersionOutput))]
internal sealed partial class CliJson : JsonSerializerContext;

internal static class Program
{
    public const string RootHelp = """

        Usage:  vessel [OPTIONS] COMMAND

        A Linux virtualization engine: containers, images and machines, one daemon, one API, one CLI.

        Common Commands:
          run         Create and run a new container from an image
          exec        Execute a command in a running container
          ps          List containers
          build       Build an image from a Containerfile
          pull        Download an image from a registry
          push        Upload an image to a registry
          images      List images
          login       Log in to a registry
          logout      Log out from a registry
          tag         Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
          rmi         Remove one or more images
          history     Show the history of an image
          save        Save one or more images to a tar archive
          load        Load images from a tar archive or STDIN
          import      Import a rootfs tarball as an image
          events      Get real time events from the daemon
          info        Display system-wide information
          version     Show the Vessel version information

        Container Commands:
          attach      Attach local standard input, output, and error streams to a running container
          create      Create a new container
          start       Start one or more stopped containers
          stop        Stop one or more running containers
          restart     Restart one or more containers
          kill        Kill one or more running containers
          rm          Remove one or more containers
          logs        Fetch the logs of a container
          wait        Block until one or more containers stop, then print their exit codes
          inspect     Display detailed information on one or more containers
          top         Display the running processes of a container
          stats       Display a live stream of container(s) resource usage statistics
          cp          Copy files/folders between a container and the local filesystem
          commit      Create a new image from a container's changes
          diff        Inspect changes to files or directories on a container's filesystem
          rename      Rename a container
          pause       Pause all processes within one or more containers
          unpause     Unpause all processes within one or more containers
          update      Update configuration of one or more containers
          port        List port mappings or a specific mapping for the container

        Management Commands:
          container   Manage containers
          image       Manage images
          network     Manage networks
          volume      Manage volumes
          vm          Manage virtual machines (QEMU)
          operation   Manage long-running operations (pulls, imports)
          system      Manage Vessel

        Global Options:
          -H, --host string   Daemon socket to connect to (unix:///path; default $VESSEL_HOST,
                              else unix://$VESSEL_RUN_ROOT/vessel.sock, else unix:///run/vessel/vessel.sock;
                              a daemon on the default socket is started when none answers)
          -D, --debug         Enable debug output
          -h, --help          Print usage
          -v, --version       Print version information and quit

        Run 'vessel COMMAND --help' for more information on a command.
        """;

    public static async Task<int> Main(string[] args)
    {
        if (args.Length == 0 || args is ["-h" or "--help"] || args is ["help"])
        {
            Console.Out.WriteLine(RootHelp.TrimStart('\n'));
            return 0;
        }
        if (args is ["-v" or "--version"])
        {
            Console.Out.WriteLine($"Vessel version {ApiInfo.Version}, API {ApiInfo.ApiVersion}");
            return 0;
        }
        args = Commands.SeparateCommand(args);
        var cli = new Commands();
        RootCommand root = cli.Build();
        DockerHelp.Install(root);
        ParseResult parsed = root.Parse(args);
        if (parsed.Action is not (HelpAction or DockerHelp))
        {
            string path = string.Join(' ', CommandPath(parsed.CommandResult.Command));
            string? error = null;
            // An unknown flag may have been taken for a positional argument: docker says "unknown flag".
            foreach (var t in parsed.Tokens.TakeWhile(t => t.Type != System.CommandLine.Parsing.TokenType.DoubleDash))
                if (t.Type == System.CommandLine.Parsing.TokenType.Argument && t.Value.Length > 1 && t.Value[0] == '-' && !char.IsDigit(t.Value[1]))
                { error = $"unknown flag: {t.Value}"; break; }
            if (error is null && parsed.UnmatchedTokens.Count > 0)
            {
                string u = parsed.UnmatchedTokens[0];
                error = u.StartsWith('-') ? $"unknown flag: {u}" : $"'{u}' is not a {path} command";
            }
            if (error is null && parsed.Errors.Count > 0)
            {
                // A management command alone ("vessel image") prints its help, as docker does.
                if (parsed.CommandResult.Command.Subcommands.Count > 0 && parsed.CommandResult.Tokens.Count == 0)
                {
                    await root.Parse([.. args, "--help"]).InvokeAsync();
                    return 0;
                }
                error = parsed.Errors[0].Message;
            }
            if (error is not null)
            {
                Console.Error.WriteLine($"vessel: {error}");
                Console.Error.WriteLine($"See '{path} --help'.");
                return CliException.Failure;
            }
        }
        try
        {
            var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
            // Attached run/start/attach handle the terminating signals themselves (SignalForwarding).
            if (parsed.CommandResult.Command.Name is "run" or "start" or "attach") config.ProcessTerminationTimeout = null;
            return await parsed.InvokeAsync(config);
        }
        catch (CliException e)
        {
            Console.Out.Flush();
            Console.Error.WriteLine($"vessel: {e.Message.ReplaceLineEndings(" ")}");
            if (cli.Debug && e.InnerException is { } inner) Console.Error.WriteLine($"vessel: debug: {inner.GetType().Name}: {inner.Message}");
            return e.ExitCode;
        }
        catch (OperationCanceledException)
        {
            return 130;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or System.Text.Json.JsonException or HttpRequestException)
        {
            Console.Error.WriteLine($"vessel: {e.Message.ReplaceLineEndings(" ")}");
            if (cli.Debug) Console.Error.WriteLine(e.ToString());
            return CliException.Failure;
        }
    }

    private static IEnumerable<string> CommandPath(Command c)
    {
        var names = new List<string>();
        for (Symbol? s = c; s is Command cmd; s = cmd.Parents.FirstOrDefault())
            names.Insert(0, cmd is RootCommand ? "vessel" : cmd.Name);
        return names;
    }
}
