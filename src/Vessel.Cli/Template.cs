using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Vessel.Cli;

/// <summary>docker's <c>--format</c> for listings: <c>table</c> (the default), <c>json</c>, or a Go template in the
/// subset people use with docker — <c>{{.Field}}</c>, <c>{{json .}}</c>, <c>{{json .Field}}</c>,
/// <c>{{.Label "key"}}</c> and <c>{{upper|lower|title .Field}}</c> — optionally after <c>table </c> (a header row
/// and aligned columns). <c>\t</c> and <c>\n</c> in the template are a tab and a newline, as in docker. Anything else
/// (range, if, pipes) is refused with one line rather than printed wrong. Fields are a row's docker names (a
/// <see cref="TemplateRow"/>), so the templates of docker scripts work unchanged.</summary>
internal sealed class Template
{
    private abstract record Part;
    private sealed record Text(string Value) : Part;
    private sealed record Field(string Name, string? Func, string? Arg) : Part;

    private readonly List<Part> _parts;
    public bool IsTable { get; }

    private Template(List<Part> parts, bool table) { _parts = parts; IsTable = table; }

    /// <summary>null for "" / "table" (the command's own table), "json" for json; else a template.</summary>
    public static bool IsTemplate(string? format) => format is { Length: > 0 } f && f != "table" && f != "json";

    public static Template Parse(string format)
    {
        bool table = false;
        if (format.StartsWith("table ", StringComparison.Ordinal)) { table = true; format = format[6..].Trim(' '); }
        format = format.Replace("\\t", "\t", StringComparison.Ordinal).Replace("\\n", "\n", StringComparison.Ordinal);
        if (!format.Contains("{{", StringComparison.Ordinal))
            throw new CliException($"unsupported --format {format}: use 'table', 'json' or a Go template such as '{{{{.ID}}}}'");
        var parts = new List<Part>();
        int pos = 0;
        while (pos < format.Length)
        {
            int open = format.IndexOf("{{", pos, StringComparison.Ordinal);
            if (open < 0) { parts.Add(new Text(format[pos..])); break; }
            if (open > pos) parts.Add(new Text(format[pos..open]));
            int close = format.IndexOf("}}", open + 2, StringComparison.Ordinal);
            if (close < 0) throw new CliException($"template: unclosed action in {format}");
            parts.Add(Action(format[(open + 2)..close].Trim(' ', '-')));
            pos = close + 2;
        }
        return new Template(parts, table);
    }

    private static Field Action(string action)
    {
        string[] words = action.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        static string? FieldName(string w) => w == "." ? "" : w.StartsWith('.') && w.Length > 1 ? w[1..] : null;
        if (words.Length == 1 && FieldName(words[0]) is { } f) return new Field(f, null, null);
        if (words.Length == 2 && words[0] is "json" or "upper" or "lower" or "title" && FieldName(words[1]) is { } g)
            return new Field(g, words[0], null);
        if (words.Length == 2 && words[0] is ".Label" && words[1].Length >= 2 && words[1][0] == '"' && words[1][^1] == '"')
            return new Field("Labels", "label", words[1][1..^1]);
        throw new CliException($"template: unsupported action {{{{{action}}}}}: Vessel's templates take {{{{.Field}}}}, {{{{json .}}}}, {{{{json .Field}}}}, {{{{.Label \"key\"}}}} and upper/lower/title");
    }

    /// <summary>Prints every row (with a header row and aligned columns for "table …").</summary>
    public void Print(IEnumerable<TemplateRow> rows, TextWriter output)
    {
        var lines = new List<string>();
        TemplateRow? first = null;
        foreach (TemplateRow r in rows) { first ??= r; lines.Add(Render(r, header: false)); }
        if (!IsTable) { foreach (string l in lines) output.WriteLine(l); return; }
        lines.Insert(0, Render(first, header: true));
        var cells = lines.Select(l => l.Split('\t')).ToList();
        int cols = cells.Max(c => c.Length);
        var widths = new int[cols];
        foreach (string[] c in cells)
            for (int i = 0; i < c.Length - 1; i++) widths[i] = Math.Max(widths[i], Math.Max(c[i].Length + 3, 10));
        var sb = new StringBuilder();
        foreach (string[] c in cells)
        {
            for (int i = 0; i < c.Length; i++) sb.Append(i == c.Length - 1 ? c[i] : c[i].PadRight(widths[i]));
            sb.Append('\n');
        }
        output.Write(sb.ToString());
    }

    /// <summary>Renders the template over a JSON document (inspect -f): <c>{{.State.Status}}</c> walks its properties,
    /// matching names case-insensitively (Vessel's camelCase answers docker's PascalCase paths); scalars print as
    /// text, objects and arrays as JSON, a missing path as Go's <c>&lt;no value&gt;</c>.</summary>
    public string Render(JsonElement doc)
    {
        var sb = new StringBuilder();
        foreach (Part p in _parts)
        {
            if (p is Text t) { sb.Append(t.Value); continue; }
            var f = (Field)p;
            JsonElement? at = doc;
            foreach (string seg in f.Name.Split('.', StringSplitOptions.RemoveEmptyEntries))
            {
                if (at is not { ValueKind: JsonValueKind.Object } o) { at = null; break; }
                at = o.EnumerateObject().Where(x => string.Equals(x.Name, seg, StringComparison.OrdinalIgnoreCase)).Select(x => (JsonElement?)x.Value).FirstOrDefault();
                if (at is null) break;
            }
            if (f.Func == "label")
            {
                at = at is { ValueKind: JsonValueKind.Object } labels && labels.TryGetProperty(f.Arg!, out JsonElement lv) ? lv : null;
            }
            string text = at switch
            {
                null => f.Func == "json" ? "null" : "<no value>",
                { } e when f.Func == "json" => Json(JsonNode.Parse(e.GetRawText())!),
                { ValueKind: JsonValueKind.String } e => e.GetString()!,
                { ValueKind: JsonValueKind.Object or JsonValueKind.Array } e => Json(JsonNode.Parse(e.GetRawText())!),
                { ValueKind: JsonValueKind.Null } => "<no value>",
                { } e => e.GetRawText(),
            };
            sb.Append(f.Func switch { "upper" => text.ToUpperInvariant(), "lower" => text.ToLowerInvariant(), _ => text });
        }
        return sb.ToString();
    }

    /// <param name="row">null only for the header of an empty table (field names are checked against nothing).</param>
    private string Render(TemplateRow? row, bool header)
    {
        var sb = new StringBuilder();
        foreach (Part p in _parts)
        {
            if (p is Text t) { sb.Append(t.Value); continue; }
            var f = (Field)p;
            if (header)
            {
                sb.Append(f.Name.Length == 0 ? "" : f.Func == "label" ? f.Arg!.ToUpperInvariant() : row?.Header(f.Name) ?? Upper(f.Name));
                continue;
            }
            if (f.Name.Length == 0)
            {
                if (f.Func != "json") throw new CliException("template: {{.}} prints nothing useful: use {{json .}}");
                sb.Append(Json(row!.ToJson()));
                continue;
            }
            string value = row!.Get(f.Name);
            sb.Append(f.Func switch
            {
                "json" => Json(JsonValue.Create(value)),
                "upper" => value.ToUpperInvariant(),
                "lower" => value.ToLowerInvariant(),
                "title" => value.Length > 0 ? char.ToUpperInvariant(value[0]) + value[1..] : value,
                "label" => row.Label(f.Arg!),
                _ => value,
            });
        }
        return sb.ToString();
    }

    /// <summary>JSON as Go's encoding/json writes it for a terminal: quotes and '+' as they are, not \u0022.</summary>
    private static string Json(JsonNode node)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            node.WriteTo(w);
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static string Upper(string field) => System.Text.RegularExpressions.Regex.Replace(field, "([a-z])([A-Z])", "$1 $2").ToUpperInvariant();
}

/// <summary>One listing row under docker's field names, in docker's order, with the table headers docker prints for
/// them (<c>ID</c> of ps is <c>CONTAINER ID</c>, …).</summary>
internal sealed class TemplateRow(IReadOnlyDictionary<string, string>? headers = null)
{
    private readonly List<KeyValuePair<string, string>> _fields = [];
    private IReadOnlyDictionary<string, string>? _labels;

    public TemplateRow Add(string name, string? value) { _fields.Add(new(name, value ?? "")); return this; }

    /// <summary>Labels as docker's "k=v,k=v" field and for {{.Label "k"}}.</summary>
    public TemplateRow WithLabels(IReadOnlyDictionary<string, string>? labels)
    {
        _labels = labels;
        return Add("Labels", string.Join(',', (labels ?? new Dictionary<string, string>()).OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}")));
    }

    public string Get(string name)
    {
        foreach (var (k, v) in _fields) if (k == name) return v;
        if (name.Contains('.', StringComparison.Ordinal)) return ""; // a map key the row lacks (Actor.Attributes.x): Go prints nothing useful either
        throw new CliException($"template: no field {name} here (known: {string.Join(", ", _fields.Select(f => f.Key))})");
    }

    public string Label(string key) => _labels is not null && _labels.TryGetValue(key, out string? v) ? v : "";

    public string Header(string name) => headers is not null && headers.TryGetValue(name, out string? h) ? h
        : _fields.Any(f => f.Key == name) ? System.Text.RegularExpressions.Regex.Replace(name, "([a-z])([A-Z])", "$1 $2").ToUpperInvariant()
        : Get(name);

    public JsonObject ToJson()
    {
        var o = new JsonObject();
        foreach (var (k, v) in _fields) o[k] = v;
        return o;
    }
}
