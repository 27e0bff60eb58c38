using System.Globalization;
using Vessel.Api;

namespace Vessel.Engine.Containers;

/// <summary>docker's json-file log options: <c>--log-opt max-size=10m --log-opt max-file=3</c> (the monitor rotates
/// container.log → .1 → … when a line would pass max-size). Defaults are Vessel's: 10 MiB × 3 files (docker's
/// json-file keeps one unbounded file by default; a daemon that fills the disk with one chatty container is worse).
/// The driver is json-file only (<c>--log-driver json-file</c>, also <c>local</c>: the same files).</summary>
public readonly record struct LogSettings(long MaxBytes, int Files)
{
    public static readonly LogSettings Default = new(ContainerService.LogMaxBytes, ContainerService.LogFiles);

    public static LogSettings Of(ContainerCreateRequest req)
    {
        if (req.LogDriver is { Length: > 0 } d && d is not ("json-file" or "local"))
            throw EngineException.Invalid($"log driver \"{d}\" is not supported: Vessel keeps json-file logs (--log-driver json-file)");
        long max = Default.MaxBytes;
        int files = Default.Files;
        foreach (var (key, value) in req.LogOptions ?? [])
        {
            switch (key)
            {
                case "max-size":
                    max = value == "-1" ? 0 : ParseSize(value) is > 0 and long s ? s
                        : throw EngineException.Invalid($"invalid --log-opt max-size={value}: a size such as 10m, 512k or 1g");
                    break;
                case "max-file":
                    files = int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n is >= 1 and <= 100 ? n
                        : throw EngineException.Invalid($"invalid --log-opt max-file={value}: a number from 1 to 100");
                    break;
                case "compress" or "labels" or "env" or "tag": break; // docker's json-file options that change no file here
                default: throw EngineException.Invalid($"unknown log opt '{key}' for json-file log driver (max-size, max-file)");
            }
        }
        if (max == 0) files = 1; // unlimited: one file, never rotated (docker's max-size=-1)
        return new LogSettings(max, files);
    }

    /// <summary>docker's units (go-units RAMInBytes): 100, 10k, 10kb, 10m, 1g, case-insensitive, powers of 1024.</summary>
    private static long? ParseSize(string s)
    {
        s = s.Trim().ToLowerInvariant();
        if (s.EndsWith('b')) s = s[..^1];
        long mult = s.Length == 0 ? 1 : s[^1] switch { 'k' => 1L << 10, 'm' => 1L << 20, 'g' => 1L << 30, _ => 1 };
        if (mult != 1) s = s[..^1];
        return decimal.TryParse(s, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal v) && v > 0 ? (long)(v * mult) : null;
    }
}
