using System.Text.Json;
using System.Text.Json.Serialization;
using Vessel.Runtime.Spec;
using Vessel.Runtime.State;

namespace Vessel.Runtime;

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = false,
    ReadCommentHandling = JsonCommentHandling.Disallow, AllowTrailingCommas = false)]
[JsonSerializable(typeof(RuntimeSpec))]
[JsonSerializable(typeof(ProcessSpec))]
[JsonSerializable(typeof(LinuxResources))]
[JsonSerializable(typeof(ContainerState))]
[JsonSerializable(typeof(List<ContainerState>))]
[JsonSerializable(typeof(StoredContainer))]
[JsonSerializable(typeof(List<int>))]
[JsonSerializable(typeof(NamespaceSpec))]
public sealed partial class RuntimeJson : JsonSerializerContext
{
    private static RuntimeJson? _indented;

    /// <summary>The same types, written with indentation (config.json from `spec`, `state` output).</summary>
    public static RuntimeJson Indented => _indented ??= new RuntimeJson(new JsonSerializerOptions { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull });

    /// <summary>Reads config.json, turning a syntax or type error into a <see cref="SpecException"/> with its position.</summary>
    public static RuntimeSpec ReadSpec(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (FileNotFoundException) { throw new SpecException("config.json", $"{path} does not exist"); }
        catch (DirectoryNotFoundException) { throw new SpecException("config.json", $"{path} does not exist"); }
        return Parse(text, Default.RuntimeSpec, "config.json") ?? throw new SpecException("config.json", "is null");
    }

    public static T? Parse<T>(string text, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, string what)
    {
        try { return JsonSerializer.Deserialize(text, type); }
        catch (JsonException e)
        {
            var where = e.Path is { Length: > 1 } p ? p.TrimStart('$', '.') : what;
            var at = e.LineNumber is { } line ? $" (line {line + 1}, byte {e.BytePositionInLine + 1})" : "";
            var reason = e.InnerException?.Message ?? e.Message.Split(". Path:")[0];
            throw new SpecException(where, $"malformed {what}{at}: {reason}");
        }
    }
}
