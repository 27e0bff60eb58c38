using System.Text;

namespace Vessel.Machines;

/// <summary>A cloud-init NoCloud seed: an ISO 9660 volume labelled <c>cidata</c> holding meta-data and user-data
/// (cloud-init's "NoCloud" datasource finds it by that label), built with xorriso.</summary>
public static class CloudInit
{
    public static void WriteSeed(string iso, string hostname, string instanceId, string? userData, IReadOnlyList<string> sshKeys)
    {
        string xorriso = Tools.Find(Tools.Xorriso);
        string dir = iso + ".d";
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllText(Path.Combine(dir, "meta-data"), $"instance-id: {instanceId}\nlocal-hostname: {hostname}\n");
            File.WriteAllText(Path.Combine(dir, "user-data"), UserData(userData, sshKeys));
            Tools.Run(xorriso, ["-as", "mkisofs", "-quiet", "-output", iso, "-volid", "cidata", "-joliet", "-rock", dir], TimeSpan.FromMinutes(2));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    /// <summary>The user-data as given; SSH keys are added to a #cloud-config document (or make one).</summary>
    public static string UserData(string? userData, IReadOnlyList<string> sshKeys)
    {
        var keys = sshKeys.SelectMany(k => k.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Where(k => k.Length > 0 && !k.StartsWith('#')).ToList();
        if (keys.Count == 0) return userData ?? "#cloud-config\n";
        string doc = userData ?? "#cloud-config\n";
        if (!doc.StartsWith("#cloud-config", StringComparison.Ordinal))
            throw new MachineException("--ssh-key needs a #cloud-config user-data (this one is a script or another format): put the keys in it yourself", MachineErrorKind.Invalid);
        if (doc.Contains("ssh_authorized_keys:", StringComparison.Ordinal))
            throw new MachineException("--ssh-key: the user-data already has ssh_authorized_keys: put the keys there", MachineErrorKind.Invalid);
        var sb = new StringBuilder(doc);
        if (!doc.EndsWith('\n')) sb.Append('\n');
        sb.Append("ssh_authorized_keys:\n");
        foreach (string k in keys) sb.Append("  - ").Append(k).Append('\n');
        return sb.ToString();
    }
}
