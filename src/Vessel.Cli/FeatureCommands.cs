using System.CommandLine;
using System.Text.Json;
using Vessel.Api;

namespace Vessel.Cli;

/// <summary>Flags of run/create for volumes, restart policies, stop settings, --init, --security-opt and health
/// checks (parsed by the daemon, which owns docker's syntaxes), and the `volume` and `restart` verbs.</summary>
internal sealed partial class Commands
{
    /// <summary>Value-taking flags of this file, for <see cref="SeparateCommand"/>.</summary>
    private static readonly string[] FeatureValueFlags =
    [
        "-v", "--volume", "--mount", "--tmpfs", "--restart", "--stop-signal", "--stop-timeout", "--security-opt",
        "--health-cmd", "--health-interval", "--health-timeout", "--health-retries", "--health-start-period",
    ];

    private sealed class FeatureFlags
    {
        public readonly Option<string[]> Volume = new("--volume", "-v") { Description = "Bind mount a volume: NAME:/path[:ro], /host/path:/path[:ro,…] or /path (an anonymous volume)", Arity = ArgumentArity.ZeroOrMore };
        public readonly Option<string[]> Mount = new("--mount") { Description = "Attach a filesystem mount to the container: type=volume|bind|tmpfs,source=…,target=…[,readonly][,tmpfs-size=…][,tmpfs-mode=…]", Arity = ArgumentArity.ZeroOrMore };
        public readonly Option<string[]> Tmpfs = new("--tmpfs") { Description = "Mount a tmpfs directory: /path[:size=64m,mode=1777,…]", Arity = ArgumentArity.ZeroOrMore };
        public readonly Option<string?> Restart = new("--restart") { Description = "Restart policy to apply when a container exits: no, on-failure[:max-retries], always, unless-stopped (default \"no\")" };
        public readonly Option<string?> StopSignal = new("--stop-signal") { Description = "Signal to stop the container (default: the image's, else SIGTERM)" };
        public readonly Option<int?> StopTimeout = new("--stop-timeout") { Description = "Timeout (in seconds) to stop a container (default 10)" };
        public readonly Option<bool> Init = new("--init") { Description = "Run an init inside the container (tini at /sbin/docker-init) that forwards signals and reaps processes" };
        public readonly Option<string[]> SecurityOpt = new("--security-opt") { Description = "Security options: seccomp=FILE|unconfined, no-new-privileges[:true|false], systempaths=unconfined", Arity = ArgumentArity.ZeroOrMore };
        public readonly Option<string?> HealthCmd = new("--health-cmd") { Description = "Command to run to check health" };
        public readonly Option<string?> HealthInterval = new("--health-interval") { Description = "Time between running the check (ms|s|m|h) (default 30s)" };
        public readonly Option<string?> HealthTimeout = new("--health-timeout") { Description = "Maximum time to allow one check to run (ms|s|m|h) (default 30s)" };
        public readonly Option<int?> HealthRetries = new("--health-retries") { Description = "Consecutive failures needed to report unhealthy (default 3)" };
        public readonly Option<string?> HealthStartPeriod = new("--health-start-period") { Description = "Start period for the container to initialize before failures count (ms|s|m|h) (default 0s)" };
        public readonly Option<bool> NoHealthcheck = new("--no-healthcheck") { Description = "Disable any container-specified HEALTHCHECK" };

        public void AddTo(Command cmd)
        {
            foreach (Option o in new Option[] { Volume, Mount, Tmpfs, Restart, StopSignal, StopTimeout, Init, SecurityOpt, HealthCmd, HealthInterval, HealthTimeout, HealthRetries, HealthStartPeriod, NoHealthcheck })
                cmd.Options.Add(o);
        }

        public ContainerCreateRequest Apply(ParseResult pr, ContainerCreateRequest req)
        {
            static List<string>? L(string[]? a) => a is { Length: > 0 } ? [.. a] : null;
            ContainerHealthConfig? health = null;
            if (pr.GetValue(NoHealthcheck))
            {
                if (pr.GetValue(HealthCmd) is not null || pr.GetValue(HealthInterval) is not null || pr.GetValue(HealthTimeout) is not null
                    || pr.GetValue(HealthRetries) is not null || pr.GetValue(HealthStartPeriod) is not null)
                    throw new CliException("--no-healthcheck conflicts with --health-* options");
                health = new ContainerHealthConfig { Test = ["NONE"] };
            }
            else if (pr.GetValue(HealthCmd) is not null || pr.GetValue(HealthInterval) is not null || pr.GetValue(HealthTimeout) is not null
                     || pr.GetValue(HealthRetries) is not null || pr.GetValue(HealthStartPeriod) is not null)
            {
                health = new ContainerHealthConfig
                {
                    Test = pr.GetValue(HealthCmd) is { Length: > 0 } hc ? ["CMD-SHELL", hc] : null, Interval = pr.GetValue(HealthInterval),
                    Timeout = pr.GetValue(HealthTimeout), Retries = pr.GetValue(HealthRetries), StartPeriod = pr.GetValue(HealthStartPeriod),
                };
            }
            return req with
            {
                Binds = L(pr.GetValue(Volume)), Mounts = L(pr.GetValue(Mount)), Tmpfs = L(pr.GetValue(Tmpfs)), Restart = pr.GetValue(Restart),
                StopSignal = pr.GetValue(StopSignal), StopTimeout = pr.GetValue(StopTimeout), Init = pr.GetValue(Init),
                SecurityOpt = L(pr.GetValue(SecurityOpt)?.Select(ReadSeccompFile).ToArray()), Healthcheck = health,
            };
        }

        /// <summary>seccomp=FILE: the client reads the profile and sends its JSON (as docker's client does), so the
        /// file may live where the daemon can't see it.</summary>
        private static string ReadSeccompFile(string opt)
        {
            int sep = opt.IndexOfAny(['=', ':']);
            if (sep < 0 || opt[..sep] != "seccomp" || opt[(sep + 1)..] is "unconfined" or "") return opt;
            string file = opt[(sep + 1)..];
            try { return "seccomp=" + File.ReadAllText(file); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            { throw new CliException($"opening seccomp profile ({file}) failed: {e.Message}"); }
        }
    }

    /// <summary>docker refuses --rm with a restart policy in the client, before anything is created.</summary>
    private static void CheckRestartWithRm(ContainerCreateRequest req, bool rm)
    {
        if (rm && req.Restart is { Length: > 0 } r && r != "no") throw new CliException("Conflicting options: --restart and --rm");
    }

    /// <summary>docker's ps suffix: " (healthy)", " (unhealthy)", " (health: starting)".</summary>
    private static string HealthSuffix(ContainerHealth? h) => h?.Status switch
    {
        null => "",
        "starting" => " (health: starting)",
        var st => $" ({st})",
    };

    // ---- restart -----------------------------------------------------------------------------------------

    private Command RestartCmd()
    {
        var time = new Option<int?>("--time", "-t") { Description = "Seconds to wait before killing the container (default: its --stop-timeout, else 10)" };
        var signal = new Option<string?>("--signal", "-s") { Description = "Signal to send to the container (default: its stop signal)" };
        return EachContainer("restart", "Restart one or more containers",
            (c, pr, id, ct) => c.SendNoContent(HttpMethod.Post, $"v1/containers/{Esc(id)}/restart{StopQuery(pr, time, signal)}", null, ct), time, signal);
    }

    // ---- volumes -----------------------------------------------------------------------------------------

    private Command VolumeGroup()
    {
        var group = new Command("volume", "Manage volumes");
        group.Subcommands.Add(VolumeCreate());
        group.Subcommands.Add(VolumeLs());
        group.Subcommands.Add(VolumeInspect());
        group.Subcommands.Add(VolumeRm());
        group.Subcommands.Add(VolumePrune());
        return group;
    }

    private static Dictionary<string, string>? Labels(string[]? labels)
    {
        var d = new Dictionary<string, string>();
        foreach (string l in labels ?? [])
        {
            int eq = l.IndexOf('=');
            d[eq < 0 ? l : l[..eq]] = eq < 0 ? "" : l[(eq + 1)..];
        }
        return d.Count > 0 ? d : null;
    }

    private Command VolumeCreate()
    {
        var label = new Option<string[]>("--label", "-l") { Description = "Set metadata for a volume", Arity = ArgumentArity.ZeroOrMore };
        var driver = new Option<string?>("--driver", "-d") { Description = "Specify volume driver name (only \"local\")" };
        var name = new Argument<string?>("VOLUME") { Arity = ArgumentArity.ZeroOrOne, Description = "Name of the volume (default: 64 random hex digits)" };
        var cmd = new Command("create", "Create a volume") { label, driver, name };
        cmd.SetAction(async (pr, ct) =>
        {
            if (pr.GetValue(driver) is { } d && d != "local") throw new CliException($"volume driver \"{d}\" is not supported: only local");
            using Client c = Connect(pr);
            var req = new VolumeCreateRequest { Name = pr.GetValue(name), Labels = Labels(pr.GetValue(label)) };
            VolumeInfo v = await c.Send(HttpMethod.Post, "v1/volumes", Client.Json(req, VolumeJson.Default.VolumeCreateRequest), VolumeJson.Default.VolumeInfo, ct);
            Console.Out.WriteLine(v.Name);
            return 0;
        });
        return cmd;
    }

    private static string FilterQuery(string[]? filters, string sep = "?") =>
        filters is { Length: > 0 } f ? sep + string.Join('&', f.Select(x => "filter=" + Uri.EscapeDataString(x))) : "";

    private Command VolumeLs()
    {
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Only display volume names" };
        var filter = new Option<string[]>("--filter", "-f") { Description = "Provide filter values (e.g. \"dangling=true\", \"label=KEY[=VALUE]\", \"name=…\")", Arity = ArgumentArity.ZeroOrMore };
        var format = TemplateFormatOption();
        var cmd = new Command("ls", "List volumes") { quiet, filter, format };
        cmd.Aliases.Add("list");
        cmd.SetAction(async (pr, ct) =>
        {
            bool json = Json(pr, format, templates: true);
            using Client c = Connect(pr);
            List<VolumeInfo> list = await c.Get("v1/volumes" + FilterQuery(pr.GetValue(filter)), VolumeJson.Default.ListVolumeInfo, ct);
            if (pr.GetValue(quiet)) { foreach (var v in list) Console.Out.WriteLine(v.Name); return 0; }
            if (json) { foreach (var v in list) JsonLine(v, VolumeJson.Default.VolumeInfo); return 0; }
            if (Templated(pr, format, list, VolumeRow)) return 0;
            var t = new Table("DRIVER", "VOLUME NAME");
            foreach (var v in list) t.Add(v.Driver, v.Name);
            Console.Out.Write(t.ToString());
            return 0;
        });
        return cmd;
    }

    private static readonly VolumeJson IndentedVolumes = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = true,
    });

    private Command VolumeInspect()
    {
        var names = new Argument<string[]>("VOLUME") { Arity = ArgumentArity.OneOrMore };
        var format = InspectFormatOption();
        var cmd = new Command("inspect", "Display detailed information on one or more volumes") { format, names };
        cmd.SetAction(async (pr, ct) =>
        {
            Template? template = pr.GetValue(format) is { Length: > 0 } f && f != "json" ? Template.Parse(f) : null;
            using Client c = Connect(pr);
            var docs = new List<string>();
            CliException? failure = null;
            foreach (string n in pr.GetValue(names)!)
            {
                try { docs.Add(JsonSerializer.Serialize(await c.Get($"v1/volumes/{Uri.EscapeDataString(n)}", VolumeJson.Default.VolumeInfo, ct), IndentedVolumes.VolumeInfo)); }
                catch (CliException e) { if (failure is not null) Console.Error.WriteLine($"vessel: {failure.Message}"); failure = e; }
            }
            if (!PrintInspectTemplate(template, docs)) Console.Out.WriteLine("[\n" + string.Join(",\n", docs) + "\n]");
            if (failure is not null) throw failure;
            return 0;
        });
        return cmd;
    }

    private Command VolumeRm()
    {
        var force = new Option<bool>("--force", "-f") { Description = "Do not fail on volumes that do not exist (a volume in use is never removed)" };
        Command cmd = EachName("rm", "Remove one or more volumes. You cannot remove a volume that is in use by a container.", "VOLUME",
            (c, pr, n, ct) => c.SendNoContent(HttpMethod.Delete, $"v1/volumes/{Uri.EscapeDataString(n)}{(pr.GetValue(force) ? "?force=true" : "")}", null, ct), force);
        cmd.Aliases.Add("remove");
        return cmd;
    }

    private Command VolumePrune()
    {
        var all = new Option<bool>("--all", "-a") { Description = "Remove all unused volumes, not just anonymous ones" };
        var force = new Option<bool>("--force", "-f") { Description = "Do not prompt for confirmation" };
        var filter = new Option<string[]>("--filter") { Description = "Provide filter values (e.g. \"label=<label>\")", Arity = ArgumentArity.ZeroOrMore };
        var cmd = new Command("prune", "Remove unused local volumes (anonymous ones; all unused with --all)") { all, force, filter };
        cmd.SetAction(async (pr, ct) =>
        {
            if (!pr.GetValue(force))
            {
                string warning = pr.GetValue(all) ? "WARNING! This will remove all local volumes not used by at least one container."
                    : "WARNING! This will remove anonymous local volumes not used by at least one container.";
                if (Console.IsInputRedirected) throw new CliException($"{warning} Confirm with -f (stdin is not a terminal)");
                Console.Out.Write(warning + "\nAre you sure you want to continue? [y/N] ");
                if (Console.ReadLine()?.Trim() is not ("y" or "Y" or "yes")) return 0;
            }
            using Client c = Connect(pr);
            string q = (pr.GetValue(all) ? "?all=true" : "") + FilterQuery(pr.GetValue(filter), pr.GetValue(all) ? "&" : "?");
            VolumePruneResponse r = await c.Send(HttpMethod.Post, "v1/volumes/prune" + q, null, VolumeJson.Default.VolumePruneResponse, ct);
            if (r.VolumesDeleted.Count > 0)
            {
                Console.Out.WriteLine("Deleted Volumes:");
                foreach (string n in r.VolumesDeleted) Console.Out.WriteLine(n);
                Console.Out.WriteLine();
            }
            Console.Out.WriteLine($"Total reclaimed space: {Human.Size(r.SpaceReclaimed)}");
            return 0;
        });
        return cmd;
    }
}
