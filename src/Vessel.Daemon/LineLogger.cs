using Microsoft.Extensions.Logging;

namespace Vessel.Daemon;

/// <summary>One line per event on stderr: "2025-01-02T03:04:05.678Z info  message". Framework categories
/// (Microsoft.*) are filtered to warnings by the host's configuration.</summary>
internal sealed class LineLoggerProvider : ILoggerProvider
{
    private static readonly Lock Sync = new();
    public ILogger CreateLogger(string categoryName) => new LineLogger(categoryName);
    public void Dispose() { }

    private sealed class LineLogger(string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            string level = logLevel switch
            {
                LogLevel.Trace => "trace", LogLevel.Debug => "debug", LogLevel.Information => "info ",
                LogLevel.Warning => "warn ", LogLevel.Error => "error", _ => "fatal",
            };
            string msg = formatter(state, exception).ReplaceLineEndings(" ");
            if (exception is not null) msg += ": " + exception.Message.ReplaceLineEndings(" ");
            string src = category.StartsWith("Vessel", StringComparison.Ordinal) ? "" : category + ": ";
            lock (Sync) Console.Error.WriteLine($"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {level} {src}{msg}");
        }
    }
}
