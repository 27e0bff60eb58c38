using System.Text.Json;
using System.Text.RegularExpressions;

namespace Vessel.Runtime.State;

public enum ContainerStatus { Creating, Created, Running, Paused, Stopped }

/// <summary>runc's layout: one directory per container id under the root, holding state.json and,
/// while the container is created but not started, the exec fifo.</summary>
public sealed partial class ContainerStore(string root)
{
    public string Root { get; } = root;

    [GeneratedRegex(@"^[\w+\-\.]+$")]
    private static partial Regex IdPattern();

    public static void ValidateId(string id)
    {
        if (string.IsNullOrEmpty(id)) throw new RuntimeException("container id cannot be empty");
        if (!IdPattern().IsMatch(id) || id is "." or "..") throw new RuntimeException($"invalid container id format: {id}");
    }

    public string DirectoryOf(string id) => Path.Combine(Root, id);
    public string FifoOf(string id) => Path.Combine(Root, id, "exec.fifo");

    /// <summary>Claims the id: the directory is made atomically, so two creates of one id cannot both win.</summary>
    public void Claim(string id)
    {
        ValidateId(id);
        Directory.CreateDirectory(Root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var dir = DirectoryOf(id);
        try
        {
            Linux.Errno.Check(MkDir(dir, 0x1c0), "mkdir", dir);
        }
        catch (Linux.LinuxException e) when (e.ErrorNumber == Linux.Errno.EEXIST)
        {
            throw new RuntimeException($"container with id {id} already exists");
        }
    }

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "mkdir", SetLastError = true, StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8)]
    private static partial int MkDir(string path, int mode);

    public void Save(StoredContainer container)
    {
        var path = Path.Combine(DirectoryOf(container.Id), "state.json");
        var temp = path + ".tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(container, RuntimeJson.Default.StoredContainer));
        File.Move(temp, path, overwrite: true);
    }

    public StoredContainer Load(string id)
    {
        ValidateId(id);
        var path = Path.Combine(DirectoryOf(id), "state.json");
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new RuntimeException($"container {id} does not exist");
        }
        return JsonSerializer.Deserialize(text, RuntimeJson.Default.StoredContainer)
            ?? throw new RuntimeException($"container {id}: state.json is empty");
    }

    public bool Exists(string id) => File.Exists(Path.Combine(DirectoryOf(id), "state.json"));

    public IEnumerable<string> Ids() =>
        Directory.Exists(Root)
            ? Directory.EnumerateDirectories(Root).Select(Path.GetFileName).OfType<string>().Where(Exists).Order(StringComparer.Ordinal)
            : [];

    public void Remove(string id) => Directory.Delete(DirectoryOf(id), recursive: true);
}
