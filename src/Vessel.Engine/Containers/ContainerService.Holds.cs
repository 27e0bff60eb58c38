namespace Vessel.Engine.Containers;

/// <summary>Readers of a container's output (a Docker API attach that follows the log) must see it to the end
/// before an auto-remove (--rm) deletes the log with the container directory. While a hold is taken, the removal
/// that <see cref="Exited"/> would do is deferred until the last hold is released; explicit removals are not held.</summary>
public sealed partial class ContainerService
{
    private readonly Dictionary<string, int> _holds = new(StringComparer.Ordinal);
    private readonly HashSet<string> _removeOnRelease = new(StringComparer.Ordinal);

    /// <summary>Defers an auto-remove of <paramref name="id"/> (a full id) until the returned hold is disposed.</summary>
    public IDisposable HoldRemoval(string id)
    {
        lock (_lock) _holds[id] = _holds.GetValueOrDefault(id) + 1;
        return new Hold(this, id);
    }

    /// <summary>True when an auto-remove must wait for a hold; it is done on release then.</summary>
    private bool DeferRemoval(string id)
    {
        lock (_lock)
        {
            if (_holds.GetValueOrDefault(id) == 0) return false;
            _removeOnRelease.Add(id);
            return true;
        }
    }

    private void Release(string id)
    {
        bool remove;
        lock (_lock)
        {
            int n = _holds.GetValueOrDefault(id) - 1;
            if (n > 0) { _holds[id] = n; return; }
            _holds.Remove(id);
            remove = _removeOnRelease.Remove(id);
        }
        if (!remove) return;
        try { Remove(id, force: true, removeVolumes: true); } // as the auto-remove it stands for: --rm takes anonymous volumes
        catch (Exception e) when (e is EngineException or IOException or Vessel.Linux.LinuxException) { _log($"container {id[..12]}: --rm: {e.Message}"); }
    }

    private sealed class Hold(ContainerService owner, string id) : IDisposable
    {
        private int _disposed;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0) owner.Release(id);
        }
    }
}
