using System.CommandLine;
using System.Globalization;
using Vessel.Api;

namespace Vessel.Cli;

/// <summary>`vessel ps`: docker's flags, filters (applied here, over the API's list) and --format.</summary>
internal sealed partial class Commands
{
    private static readonly string[] PsFilterKeys = ["id", "name", "label", "status", "ancestor", "exited", "health", "before", "since"];

    private static readonly Dictionary<string, string> PsHeaders = new()
    {
        ["ID"] = "CONTAINER ID", ["Names"] = "NAMES", ["RunningFor"] = "CREATED", ["CreatedAt"] = "CREATED AT",
    };

    private Command Ps(string name = "ps")
    {
        var all = new Option<bool>("--all", "-a") { Description = "Show all containers (default shows just running)" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Only display container IDs" };
        var filter = new Option<string[]>("--filter", "-f")
        {
            Description = "Filter output based on conditions provided (id, name, label=KEY[=VALUE], status, ancestor, exited, health, before, since)",
            AllowMultipleArgumentsPerToken = false,
        };
        var last = new Option<int?>("--last", "-n") { Description = "Show n last created containers (includes all states)" };
        var latest = new Option<bool>("--latest", "-l") { Description = "Show the latest created container (includes all states)" };
        var noTrunc = new Option<bool>("--no-trunc") { Description = "Don't truncate output" };
        var format = new Option<string?>("--format")
        {
            Description = "Format output using a custom template: 'table' (default), 'table TEMPLATE' (with headers), 'json' (the API's records, one per line), or a Go template such as '{{.ID}}\\t{{.Names}}'",
        };
        var cmd = new Command(name, "List containers") { all, quiet, filter, format, last, latest, noTrunc };
        cmd.SetAction(async (pr, ct) =>
        {
            string? f = pr.GetValue(format);
            Template? template = Template.IsTemplate(f) ? Template.Parse(f!) : null;
            bool json = template is null && Json(pr, format);
            var filters = ParseFilters(pr.GetValue(filter), PsFilterKeys);
            int? limit = pr.GetValue(latest) ? 1 : pr.GetValue(last) is > 0 and int n ? n : null;
            bool everything = pr.GetValue(all) || limit is not null || filters.ContainsKey("status") || filters.ContainsKey("exited");
            using Client c = Connect(pr);
            List<ContainerSummary> list = await c.Get($"v1/containers{(everything ? "?all=true" : "")}", ContainerJson.Default.ListContainerSummary, ct);
            list = list.OrderByDescending(s => s.Created).ToList();
            list = FilterContainers(list, filters);
            if (limit is int l) list = list.Take(l).ToList();
            bool trunc = !pr.GetValue(noTrunc);
            if (pr.GetValue(quiet)) { foreach (var s in list) Console.Out.WriteLine(trunc ? s.Id[..12] : s.Id); return 0; }
            if (json) { foreach (var s in list) JsonLine(s, ContainerJson.Default.ContainerSummary); return 0; }
            var now = DateTimeOffset.UtcNow;
            if (template is not null) { template.Print(list.Select(s => PsRow(s, now, trunc)), Console.Out); return 0; }
            var t = new Table("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES");
            foreach (var s in list)
            {
                TemplateRow r = PsRow(s, now, trunc);
                t.Add(r.Get("ID"), s.Image, r.Get("Command"), Human.Ago(s.Created, now), StatusText(s.State, now), PortsText(s.Ports), s.Name);
            }
            Console.Out.Write(t.ToString());
            return 0;
        });
        return cmd;
    }

    /// <summary>docker's ps fields (its Go template context).</summary>
    private static TemplateRow PsRow(ContainerSummary s, DateTimeOffset now, bool trunc)
    {
        string command = trunc && s.Command.Length > 20 ? s.Command[..19] + "…" : s.Command;
        return new TemplateRow(PsHeaders)
            .Add("ID", trunc ? s.Id[..12] : s.Id).Add("Image", s.Image).Add("Command", $"\"{command}\"")
            .Add("CreatedAt", s.Created.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss '+0000 UTC'", CultureInfo.InvariantCulture))
            .Add("RunningFor", Human.Ago(s.Created, now)).Add("Ports", PortsText(s.Ports)).Add("State", s.State.Status)
            .Add("Status", StatusText(s.State, now)).Add("Size", "").Add("Names", s.Name).WithLabels(s.Labels);
    }

    /// <summary>key=value filters, values of one key OR-ed, keys AND-ed (docker's rule); an unknown key is an error.</summary>
    internal static Dictionary<string, List<string>> ParseFilters(string[]? raw, string[] keys)
    {
        var filters = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (string f in raw ?? [])
        {
            int eq = f.IndexOf('=');
            if (eq <= 0) throw new CliException($"bad format of filter (expected name=value): {f}");
            string key = f[..eq].Trim().ToLowerInvariant();
            if (!keys.Contains(key)) throw new CliException($"invalid filter '{key}' (known: {string.Join(", ", keys)})");
            if (!filters.TryGetValue(key, out var values)) filters[key] = values = [];
            values.Add(f[(eq + 1)..]);
        }
        return filters;
    }

    private static List<ContainerSummary> FilterContainers(List<ContainerSummary> list, Dictionary<string, List<string>> filters)
    {
        // before/since name a container: only those created before/after it (docker's).
        ContainerSummary Find(string v) => list.FirstOrDefault(s => s.Name == v || s.Id.StartsWith(v, StringComparison.Ordinal))
            ?? throw new CliException($"no such container: {v}");
        DateTimeOffset? before = filters.TryGetValue("before", out var b) ? b.Select(v => Find(v).Created).Min() : null;
        DateTimeOffset? since = filters.TryGetValue("since", out var sv) ? sv.Select(v => Find(v).Created).Max() : null;
        foreach (string st in filters.GetValueOrDefault("status") ?? [])
            if (st is not ("created" or "restarting" or "running" or "removing" or "paused" or "exited" or "dead"))
                throw new CliException($"invalid filter 'status={st}' (created, restarting, running, removing, paused, exited, dead)");
        foreach (string e in filters.GetValueOrDefault("exited") ?? [])
            if (!int.TryParse(e, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _)) throw new CliException($"invalid filter 'exited={e}': not a number");
        bool Any(string key, Func<string, bool> match) => !filters.TryGetValue(key, out var values) || values.Any(match);
        return list.Where(s =>
            Any("id", v => s.Id.StartsWith(v, StringComparison.Ordinal))
            && Any("name", v => s.Name.Contains(v.TrimStart('/'), StringComparison.Ordinal))
            && Any("label", v =>
            {
                int eq = v.IndexOf('=');
                string key = eq < 0 ? v : v[..eq];
                return s.Labels is not null && s.Labels.TryGetValue(key, out string? lv) && (eq < 0 || lv == v[(eq + 1)..]);
            })
            && Any("status", v => s.State.Status == v)
            && Any("ancestor", v => s.Image == v || s.Image == v + ":latest" || s.Image.Split(':')[0] == v
                                    || s.ImageId == v || (v.Length >= 4 && s.ImageId.Replace("sha256:", "").StartsWith(v.Replace("sha256:", ""), StringComparison.Ordinal)))
            && Any("exited", v => s.State.Status == ContainerStatus.Exited && s.State.ExitCode?.ToString(CultureInfo.InvariantCulture) == v.TrimStart('+'))
            && Any("health", v => (s.State.Health?.Status ?? "none") == v)
            && (before is null || s.Created < before)
            && (since is null || s.Created > since)).ToList();
    }
}
