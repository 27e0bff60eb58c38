using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Vessel.Runc.Tests.Infrastructure;

namespace Vessel.Runc.Tests;

/// <summary>Every refusal is one line on stderr with the right exit status, and leaves nothing behind.</summary>
public sealed class BadInputTests(TestEnvironment env, StateRoot state) : ContainerTest(env, state), IClassFixture<StateRoot>
{
    [Fact]
    public void Malformed_config_names_the_file_and_the_position()
    {
        var b = NewBundle("true");
        File.WriteAllText(b.ConfigPath, "{\n  \"ociVersion\": \"1.2.0\",\n  \"process\": { \"args\": [\"true\" }\n}\n");
        var r = Runc.Invoke(["create", "--bundle", b.Dir, b.Id]).FailsWith(1, "config.json");
        Assert.Matches(new Regex("line|position|byte|offset", RegexOptions.IgnoreCase), r.Stderr);
        Assert.Empty(LeftoversOf(b.Id));
    }

    [Fact]
    public void Unknown_namespace_type_names_the_field()
    {
        var b = NewBundle("true");
        var namespaces = b.Linux["namespaces"]!.AsArray();
        namespaces.Add(new JsonObject { ["type"] = "bogus" });
        Create(b).FailsWith(1, $"linux.namespaces[{namespaces.Count - 1}].type", "bogus");
        Assert.Empty(LeftoversOf(b.Id));
    }

    [Fact]
    public void Missing_rootfs_fails_clearly()
    {
        var b = NewBundle("true");
        b.Config["root"]!["path"] = "no-such-rootfs";
        Create(b).FailsWith(1, "no-such-rootfs");
        Assert.Empty(LeftoversOf(b.Id));
    }

    [Fact]
    public void Missing_config_and_missing_bundle_fail_clearly()
    {
        var dir = NewTempDir("empty-bundle");
        Runc["create", "--bundle", dir, NewId()].FailsWith(1, "config.json");
        Runc["create", "--bundle", Path.Combine(dir, "nope"), NewId()].FailsWith(1, "does not exist");
    }

    [Fact]
    public void Empty_args_fail_clearly()
    {
        var b = NewBundle();
        b.Process["args"] = new JsonArray();
        Create(b).FailsWith(1, "process.args");
    }

    [Fact]
    public void Missing_executable_by_name_is_127()
    {
        Run(NewBundle("no-such-command")).FailsWith(127, "exec: \"no-such-command\": executable file not found in $PATH");
    }

    [Fact]
    public void Missing_executable_by_path_is_127()
    {
        Run(NewBundle("/bin/no-such-command")).FailsWith(127, "/bin/no-such-command", "no such file or directory");
    }

    [Fact]
    public void Non_executable_file_is_126()
    {
        Run(NewBundle("/etc/passwd")).FailsWith(126, "/etc/passwd", "permission denied");
    }

    [Fact]
    public void Create_of_a_missing_executable_fails_at_create_and_leaves_nothing()
    {
        var b = NewBundle("no-such-command");
        Create(b).FailsWith(127, "executable file not found in $PATH");
        Assert.Empty(LeftoversOf(b.Id));
    }

    [Fact]
    public void Json_log_has_level_msg_and_an_RFC3339_time()
    {
        var log = Path.Combine(NewTempDir("log"), "runc.log");
        var b = NewBundle("no-such-command");
        var r = Runc.Invoke(["--log", log, "--log-format", "json", "run", "--bundle", b.Save().Dir, b.Id]);
        Assert.True(r.ExitCode == 127, r.ToString());
        var lines = File.ReadAllLines(log).Where(l => l.Length > 0).ToList();
        Assert.NotEmpty(lines);
        var rfc3339 = new Regex(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$");
        foreach (var line in lines)
        {
            var entry = JsonNode.Parse(line)!.AsObject();
            var time = (string)entry["time"]!;
            Assert.Matches(rfc3339, time);
            Assert.True(DateTimeOffset.TryParse(time, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out _), time);
            Assert.False(string.IsNullOrEmpty((string?)entry["level"]), line);
            Assert.False(string.IsNullOrEmpty((string?)entry["msg"]), line);
        }
        var error = JsonNode.Parse(lines[^1])!;
        Assert.Equal("error", (string?)error["level"]);
        Assert.Contains("executable file not found in $PATH", (string?)error["msg"]);
    }

    [Fact]
    public void Unknown_log_format_fails_clearly()
    {
        Runc.Invoke(["--log-format", "xml", "list"]).FailsWith(1, "xml");
    }
}
