using System.Text;

namespace Vessel.Images.Layers;

/// <summary>A layer was refused or could not be applied. The message is one line naming the image, the
/// layer and (when known) the tar entry: <c>image busybox:latest: layer sha256:abcd…: entry "../etc/passwd" escapes the layer root</c>.</summary>
public sealed class LayerException : Exception
{
    public string ImageName { get; }
    public string? Layer { get; }
    public string? EntryName { get; }
    public string Reason { get; }

    public LayerException(string imageName, string? layer, string? entryName, string reason, Exception? inner = null)
        : base(Format(imageName, layer, entryName, reason), inner)
    {
        ImageName = imageName;
        Layer = layer;
        EntryName = entryName;
        Reason = reason;
    }

    private static string Format(string image, string? layer, string? entry, string reason)
    {
        var sb = new StringBuilder();
        sb.Append("image ").Append(image).Append(": ");
        if (layer is not null) sb.Append("layer ").Append(layer).Append(": ");
        if (entry is not null) sb.Append("entry ").Append(Quote(entry)).Append(' ');
        sb.Append(reason);
        return sb.ToString();
    }

    /// <summary>Quotes a (hostile) name for a one-line message: control characters escaped, long names cut.</summary>
    public static string Quote(string s)
    {
        const int Max = 120;
        var sb = new StringBuilder("\"");
        int i = 0;
        foreach (char c in s)
        {
            if (i++ == Max) { sb.Append($"…({Encoding.UTF8.GetByteCount(s)} bytes)"); break; }
            if (c == '"' || c == '\\') sb.Append('\\').Append(c);
            else if (char.IsControl(c)) sb.Append($"\\x{(int)c:x2}");
            else sb.Append(c);
        }
        return sb.Append('"').ToString();
    }
}
