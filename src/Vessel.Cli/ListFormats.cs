using System.CommandLine;
using System.Globalization;
using Vessel.Api;

namespace Vessel.Cli;

/// <summary>The Go-template fields of each listing, under docker's names where docker has the listing (images,
/// volume ls, network ls, stats, events) and Vessel's own for VMs.</summary>
internal sealed partial class Commands
{
    private static Option<string?> TemplateFormatOption() => new("--format")
    {
        Description = "Format output: 'table' (default), 'json' (one JSON object per line), a Go template such as '{{.Name}}', or 'table TEMPLATE' (with headers)",
    };

    private static Option<string?> InspectFormatOption() => new("--format", "-f")
    {
        Description = "Format output using a Go template, such as '{{.State.Status}}' (field names match case-insensitively)",
    };

    /// <summary>inspect -f: one line per document; false when there is no template (print the JSON array).</summary>
    private static bool PrintInspectTemplate(Template? template, IEnumerable<string> docs)
    {
        if (template is null) return false;
        foreach (string d in docs)
        {
            using var doc = System.Text.Json.JsonDocument.Parse(d);
            Console.Out.WriteLine(template.Render(doc.RootElement));
        }
        return true;
    }

    /// <summary>Prints the rows through the --format template and answers true, or answers false for table/json.</summary>
    private static bool Templated<T>(ParseResult pr, Option<string?> format, IEnumerable<T> items, Func<T, TemplateRow> row)
    {
        if (!Template.IsTemplate(pr.GetValue(format))) return false;
        Template.Parse(pr.GetValue(format)!).Print(items.Select(row), Console.Out);
        return true;
    }

    private static string CreatedAt(DateTimeOffset? t) =>
        t is { } v ? v.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss '+0000 UTC'", CultureInfo.InvariantCulture) : "";

    private static TemplateRow ImageRow(ImageSummary i, DateTimeOffset now) =>
        new TemplateRow(new Dictionary<string, string> { ["ID"] = "IMAGE ID", ["CreatedSince"] = "CREATED", ["CreatedAt"] = "CREATED AT" })
            .Add("ID", Human.ShortId(i.Id)).Add("Repository", i.Repository).Add("Tag", i.Tag ?? "<none>").Add("Digest", i.Digest)
            .Add("CreatedSince", Human.Ago(i.Created, now)).Add("CreatedAt", CreatedAt(i.Created)).Add("Size", Human.Size(i.Size))
            .Add("Containers", "N/A");

    private static TemplateRow VolumeRow(VolumeInfo v) =>
        new TemplateRow(new Dictionary<string, string> { ["Name"] = "VOLUME NAME" })
            .Add("Driver", v.Driver).Add("Name", v.Name).Add("Mountpoint", v.Mountpoint).Add("Scope", v.Scope)
            .Add("CreatedAt", CreatedAt(v.CreatedAt)).Add("Links", v.UsedBy.Count.ToString(CultureInfo.InvariantCulture)).WithLabels(v.Labels);

    private static TemplateRow NetworkRow(NetworkInfo n, bool trunc) =>
        new TemplateRow(new Dictionary<string, string> { ["ID"] = "NETWORK ID" })
            .Add("ID", trunc ? n.Id[..12] : n.Id).Add("Name", n.Name).Add("Driver", n.Driver).Add("Scope", "local")
            .Add("IPv6", "false").Add("Internal", n.Internal ? "true" : "false").Add("Subnet", n.Subnet).Add("Gateway", n.Gateway)
            .Add("Bridge", n.Bridge).Add("CreatedAt", CreatedAt(n.Created)).WithLabels(n.Labels);

    private static TemplateRow VmRow(MachineSummary s, DateTimeOffset now) =>
        new TemplateRow(new Dictionary<string, string> { ["ID"] = "VM ID", ["RunningFor"] = "CREATED" })
            .Add("ID", s.Id[..12]).Add("Name", s.Name).Add("CPUs", s.Cpus.ToString(CultureInfo.InvariantCulture))
            .Add("Memory", $"{s.Memory / (1024 * 1024)}MiB").Add("RunningFor", Human.Ago(s.Created, now)).Add("CreatedAt", CreatedAt(s.Created))
            .Add("State", s.State.Status).Add("Status", VmStatus(s.State, now)).Add("Source", s.Source ?? "");

    private static TemplateRow StatsRow(StatsLine l) =>
        new TemplateRow(new Dictionary<string, string> { ["ID"] = "CONTAINER ID", ["CPUPerc"] = "CPU %", ["MemUsage"] = "MEM USAGE / LIMIT", ["MemPerc"] = "MEM %", ["NetIO"] = "NET I/O", ["BlockIO"] = "BLOCK I/O", ["Container"] = "CONTAINER" })
            .Add("Container", l.Container).Add("ID", l.ID).Add("Name", l.Name).Add("CPUPerc", l.CPUPerc).Add("MemUsage", l.MemUsage)
            .Add("MemPerc", l.MemPerc).Add("NetIO", l.NetIO).Add("BlockIO", l.BlockIO).Add("PIDs", l.PIDs);

    /// <summary>docker's event fields: Type, Action, ID, Status, From, Time, TimeNano, Actor.ID, Actor.Attributes.KEY
    /// (Go's nested field access written the same way).</summary>
    private static TemplateRow EventRow(EventMessage e)
    {
        var r = new TemplateRow().Add("Type", e.Type).Add("Action", e.Action).Add("ID", e.Id).Add("Status", e.Action)
            .Add("From", e.Attributes?.GetValueOrDefault("image") ?? "").Add("Scope", "local")
            .Add("Time", (e.Time / 1_000_000_000).ToString(CultureInfo.InvariantCulture)).Add("TimeNano", e.Time.ToString(CultureInfo.InvariantCulture))
            .Add("Actor.ID", e.Id);
        if (e.Name is not null) r.Add("Actor.Attributes.name", e.Name);
        foreach (var (k, v) in e.Attributes ?? new Dictionary<string, string>()) r.Add("Actor.Attributes." + k, v);
        return r;
    }
}
