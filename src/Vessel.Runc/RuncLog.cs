using System.Text;
using System.Text.Json;

namespace Vessel.Runc;

/// <summary>runc's log: `--log FILE` (stderr by default), `--log-format text|json`. JSON lines are
/// {"level","msg","time"} with an RFC 3339 time, which containerd and podman decode.</summary>
public sealed class RuncLog
{
    private readonly string? _path;
    private readonly bool _json;
    private readonly bool _debug;

    public RuncLog(string? path, string format, bool debug)
    {
        if (format is not ("text" or "json")) throw new UsageException($"unknown log format {format}: use text or json");
        _path = string.IsNullOrEmpty(path) ? null : path;
        _json = format == "json";
        _debug = debug;
    }

    public void Error(string message) => Write("error", message, alsoStderr: _path is not null);
    /// <summary>Warnings go to --log; on stderr only with --debug, so scripted callers see clean output.</summary>
    public void Warn(string message) { if (_path is not null || _debug) Write("warning", message, alsoStderr: false); }
    public void Debug(string message) { if (_debug) Write("debug", message, alsoStderr: false); }

    private void Write(string level, string message, bool alsoStderr)
    {
        var time = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffffK");
        string line;
        if (_json)
        {
            using var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteString("level", level);
                w.WriteString("msg", message);
                w.WriteString("time", time);
                w.WriteEndObject();
            }
            line = Encoding.UTF8.GetString(buffer.ToArray());
        }
        else line = $"time=\"{time}\" level={level} msg=\"{message.Replace("\"", "\\\"")}\"";
        if (_path is null) Console.Error.WriteLine(_json ? line : message);
        else
        {
            try { File.AppendAllText(_path, line + "\n"); }
            catch (IOException) { Console.Error.WriteLine(message); }
            catch (UnauthorizedAccessException) { Console.Error.WriteLine(message); }
            if (alsoStderr) Console.Error.WriteLine(message);
        }
    }
}
