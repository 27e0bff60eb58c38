using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json;
using Vessel.Cli.Tests;

namespace Vessel.DockerApi.Tests;

/// <summary>docker network …, -p/-P, names on user networks and a docker-compose stack, with the real clients.</summary>
[Collection("docker")]
public sealed class NetworkTests(DockerFixture f)
{
    private const string Image = DockerFixture.Image;

    private static Binaries.Result Ok(Binaries.Result r)
    {
        Assert.True(r.Code == 0, r.ToString());
        return r;
    }

    private static string Tag() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));

    /// <summary>A subnet no other test daemon is likely to use at the same time (fixtures use 10.160–249.x).</summary>
    private static string Subnet() => $"10.{RandomNumberGenerator.GetInt32(100, 160)}.{RandomNumberGenerator.GetInt32(0, 256)}.0/24";

    private const string Httpd = "mkdir -p /www && echo \"$MSG\" > /www/index.html && exec httpd -f -p 80 -h /www";

    [Fact]
    public void NetworkVerbsAndNamesOnAUserNetwork()
    {
        string t = Tag(), net = "dn-" + t, other = "dn2-" + t, subnet = Subnet();
        string prefix = string.Join('.', subnet.Split('/')[0].Split('.').Take(3));
        string id = Ok(f.Docker("network", "create", "--subnet", subnet, "--gateway", prefix + ".1", "--label", "suite=" + t, net)).Out.Trim();
        Assert.Equal(64, id.Length);
        Ok(f.Docker("network", "create", "--internal", "--label", "suite=" + t, "--label", "extra=1", other));
        try
        {
            // ls: docker's three built-in networks and ours; filters by label, name, type.
            var names = Ok(f.Docker("network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}")).OutLines;
            Assert.Contains("bridge bridge local", names);
            Assert.Contains("host host local", names);
            Assert.Contains("none null local", names);
            Assert.Contains($"{net} bridge local", names);
            Assert.Equal([net, other], Ok(f.Docker("network", "ls", "-q", "--no-trunc", "--filter", "label=suite=" + t, "--format", "{{.Name}}")).OutLines.Order());
            Assert.Equal([other], Ok(f.Docker("network", "ls", "--filter", "label=extra", "--format", "{{.Name}}")).OutLines);
            Assert.Equal([net], Ok(f.Docker("network", "ls", "--filter", "name=^dn-" + t, "--format", "{{.Name}}")).OutLines);
            Assert.DoesNotContain("bridge", Ok(f.Docker("network", "ls", "--filter", "type=custom", "--format", "{{.Name}}")).OutLines);
            Assert.Contains(net, Ok(f.Docker("network", "ls", "--filter", "dangling=true", "--format", "{{.Name}}")).OutLines);

            // inspect: docker's shape.
            using (var doc = JsonDocument.Parse(Ok(f.Docker("network", "inspect", net)).Out))
            {
                JsonElement n = doc.RootElement[0];
                Assert.Equal(id, n.GetProperty("Id").GetString());
                Assert.Equal("local", n.GetProperty("Scope").GetString());
                Assert.Equal(subnet, n.GetProperty("IPAM").GetProperty("Config")[0].GetProperty("Subnet").GetString());
                Assert.Equal(prefix + ".1", n.GetProperty("IPAM").GetProperty("Config")[0].GetProperty("Gateway").GetString());
                Assert.Equal(t, n.GetProperty("Labels").GetProperty("suite").GetString());
                Assert.False(n.GetProperty("Internal").GetBoolean());
            }
            Assert.Equal("true", Ok(f.Docker("network", "inspect", "-f", "{{.Internal}}", other)).Out.Trim());

            // Two containers reach each other by name and alias; a third joins through connect (with an alias and an address).
            Ok(f.Docker("run", "-d", "--name", "web-" + t, "--network", net, "--network-alias", "www", "-e", "MSG=hello " + t, Image, "sh", "-c", Httpd));
            Ok(f.Docker("create", "--name", "late-" + t, "-e", "MSG=late " + t, Image, "sh", "-c", Httpd));
            Ok(f.Docker("network", "connect", "--alias", "second", "--ip", prefix + ".77", net, "late-" + t));
            Ok(f.Docker("start", "late-" + t));
            string fetch = "for i in $(seq 50); do wget -qO- http://$0/ && exit 0; sleep 0.1; done; exit 1";
            foreach (string host in new[] { "web-" + t, "www" })
                Assert.Equal($"hello {t}\n", Ok(f.Docker("run", "--rm", "--network", net, Image, "sh", "-c", fetch, host)).Out);
            Assert.Equal($"late {t}\n", Ok(f.Docker("run", "--rm", "--network", net, Image, "sh", "-c", fetch, "second")).Out);
            Assert.Equal($"late {t}\n", Ok(f.Docker("exec", "web-" + t, "wget", "-qO-", $"http://{prefix}.77/")).Out);
            // The other modes: another container's namespace, none (only loopback).
            Assert.Equal($"hello {t}\n", Ok(f.Docker("run", "--rm", "--network", "container:web-" + t, Image, "wget", "-qO-", "http://127.0.0.1/")).Out);
            Assert.Equal("lo", Ok(f.Docker("run", "--rm", "--network", "none", Image, "ls", "/sys/class/net")).Out.Trim());
            // A running container is connected and disconnected at once.
            Ok(f.Docker("network", "connect", other, "web-" + t));
            Assert.Equal(2, Ok(f.Docker("exec", "web-" + t, "ls", "/sys/class/net")).OutLines.Count(l => l.StartsWith("eth", StringComparison.Ordinal)));
            Ok(f.Docker("network", "disconnect", other, "web-" + t));

            // The containers show on the network and the network on the containers.
            using (var doc = JsonDocument.Parse(Ok(f.Docker("network", "inspect", net)).Out))
            {
                var containers = doc.RootElement[0].GetProperty("Containers").EnumerateObject().Select(p => p.Value).ToList();
                Assert.Contains(containers, c => c.GetProperty("Name").GetString() == "late-" + t && c.GetProperty("IPv4Address").GetString() == prefix + ".77/24");
                Assert.Contains(containers, c => c.GetProperty("Name").GetString() == "web-" + t);
            }
            using (var doc = JsonDocument.Parse(Ok(f.Docker("inspect", "web-" + t)).Out))
            {
                JsonElement c = doc.RootElement[0];
                Assert.Equal(net, c.GetProperty("HostConfig").GetProperty("NetworkMode").GetString());
                JsonElement ep = c.GetProperty("NetworkSettings").GetProperty("Networks").GetProperty(net);
                Assert.Equal(id, ep.GetProperty("NetworkID").GetString());
                Assert.StartsWith(prefix + ".", ep.GetProperty("IPAddress").GetString());
                Assert.Equal(24, ep.GetProperty("IPPrefixLen").GetInt32());
                Assert.Contains("www", ep.GetProperty("Aliases").EnumerateArray().Select(a => a.GetString()));
            }
            Assert.DoesNotContain(net, Ok(f.Docker("network", "ls", "--filter", "dangling=true", "--format", "{{.Name}}")).OutLines);

            // In use: rm refuses, prune keeps it; disconnect, then the address is gone from the network.
            var inUse = f.Docker("network", "rm", net);
            Assert.NotEqual(0, inUse.Code);
            Assert.Contains("active endpoints", inUse.Err);
            Ok(f.Docker("network", "disconnect", net, "late-" + t));
            Assert.DoesNotContain("late-" + t, Ok(f.Docker("network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", net)).Out);
            Assert.NotEqual(0, f.Docker("network", "disconnect", net, "late-" + t).Code);
            Ok(f.Docker("network", "disconnect", "-f", net, "late-" + t));
            Assert.Contains("pre-defined", f.Docker("network", "rm", "bridge").Err);

            string pruned = Ok(f.Docker("network", "prune", "-f", "--filter", "label=suite=" + t)).Out;
            Assert.Contains(other, pruned);
            Assert.DoesNotContain(net, pruned);
            Ok(f.Docker("rm", "-f", "web-" + t, "late-" + t));
            Ok(f.Docker("network", "rm", net));
            Assert.Empty(Ok(f.Docker("network", "ls", "-q", "--filter", "label=suite=" + t)).OutLines);
        }
        finally
        {
            f.Docker("rm", "-f", "web-" + t, "late-" + t);
            f.Docker("network", "rm", net, other);
        }
    }

    [Fact]
    public void PublishedPortsAreReachableFromTheHost()
    {
        string t = Tag(), name = "pub-" + t;
        int port = FreePort();
        Ok(f.Docker("run", "-d", "--name", name, "-p", $"127.0.0.1:{port}:80", "-p", "127.0.0.1::8080", "-e", "MSG=published " + t, Image, "sh", "-c", Httpd));
        try
        {
            Assert.Equal($"published {t}\n", Curl($"http://127.0.0.1:{port}/"));
            string[] lines = Ok(f.Docker("port", name)).OutLines;
            Assert.Contains($"80/tcp -> 127.0.0.1:{port}", lines);
            Assert.Contains(lines, l => l.StartsWith("8080/tcp -> 127.0.0.1:", StringComparison.Ordinal));
            Assert.Equal($"127.0.0.1:{port}", Ok(f.Docker("port", name, "80")).Out.Trim());
            Assert.Contains($"127.0.0.1:{port}->80/tcp", Ok(f.Docker("ps", "--filter", "name=" + name, "--format", "{{.Ports}}")).Out);
            using var doc = JsonDocument.Parse(Ok(f.Docker("inspect", name)).Out);
            JsonElement c = doc.RootElement[0];
            JsonElement binding = c.GetProperty("HostConfig").GetProperty("PortBindings").GetProperty("80/tcp")[0];
            Assert.Equal("127.0.0.1", binding.GetProperty("HostIp").GetString());
            Assert.Equal($"{port}", binding.GetProperty("HostPort").GetString());
            // On the default network (docker's bridge), the address is also at the top of NetworkSettings.
            string ip = c.GetProperty("NetworkSettings").GetProperty("IPAddress").GetString()!;
            Assert.True(IPAddress.TryParse(ip, out _), ip);
            Assert.Equal(ip, c.GetProperty("NetworkSettings").GetProperty("Networks").GetProperty("bridge").GetProperty("IPAddress").GetString());
            Assert.Equal($"published {t}\n", Curl($"http://{ip}/"));

            // -P: the ports exposed at create (and by the image) on random host ports, unless -p bound them already.
            int bound = FreePort();
            Ok(f.Docker("run", "-d", "--name", name + "-all", "-P", "--expose", "7777", "--expose", "7778", "-p", $"127.0.0.1:{bound}:7778", Image, "sleep", "60"));
            string[] all = Ok(f.Docker("port", name + "-all")).Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal).ToArray();
            Assert.Equal(2, all.Length);
            Assert.Matches(@"^7777/tcp -> 0\.0\.0\.0:\d+$", all[0]);
            Assert.Equal($"7778/tcp -> 127.0.0.1:{bound}", all[1]);
        }
        finally { f.Docker("rm", "-f", name, name + "-all"); }
    }

    private static string Curl(string url)
    {
        var r = Binaries.Run("curl", ["-sS", "--max-time", "5", "--retry", "10", "--retry-connrefused", "--retry-delay", "0", url]);
        Assert.True(r.Code == 0, $"{url}: {r}");
        return r.Out;
    }

    private static int FreePort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Any, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    /// <summary>docker-compose 1.29 (Debian's) brings a stack up and down: a service built from a Dockerfile, one that
    /// finds it by service name, a named volume, a published port, environment, logs, a second network with a fixed
    /// address (kept when the service is recreated), links, a dependency on a healthy service; down -v leaves nothing.</summary>
    [Fact]
    public void ComposeStackUpAndDown()
    {
        if (!File.Exists("/usr/bin/docker-compose")) Assert.Skip("docker-compose is not installed (scripts/setup.sh installs it)");
        string t = Tag(), project = "vt" + t;
        int port = FreePort();
        string subnet = Subnet(), fixedIp = string.Join('.', subnet.Split('/')[0].Split('.').Take(3)) + ".50";
        string dir = f.D.Tmp.Sub("compose-" + t), greeting = "${GREETING}"; // from compose's environment
        File.WriteAllText(Path.Combine(dir, "Dockerfile"), $"""
            FROM {Image}
            RUN mkdir -p /www && echo "built page" > /www/index.html
            CMD ["sh", "-c", "echo \"$GREETING\" > /data/greeting && cat /data/greeting >> /www/index.html && echo web is up && exec httpd -f -p 80 -h /www"]
            """);
        File.WriteAllText(Path.Combine(dir, "docker-compose.yml"), $"""
            version: "2.4"
            services:
              web:
                build: .
                healthcheck:
                  test: ["CMD", "wget", "-qO-", "http://127.0.0.1/"]
                  interval: 1s
                environment:
                  GREETING: {greeting}
                ports:
                  - "127.0.0.1:{port}:80"
                volumes:
                  - data:/data
                networks:
                  default:
                  back:
                    ipv4_address: {fixedIp}
              client:
                image: {Image}
                depends_on:
                  web:
                    condition: service_healthy
                links:
                  - web
                command: ["sh", "-c", "for i in $$(seq 100); do wget -qO- http://web/ && exit 0; sleep 0.1; done; exit 1"]
            volumes:
              data:
            networks:
              back:
                ipam:
                  config:
                    - subnet: {subnet}
            """);
        var env = f.Env();
        env["COMPOSE_PROJECT_NAME"] = project;
        env["COMPOSE_DOCKER_CLI_BUILD"] = "0";
        env["GREETING"] = "hello-compose";
        Binaries.Result Compose(params string[] args) =>
            Binaries.Run("docker-compose", ["--project-directory", dir, "-f", Path.Combine(dir, "docker-compose.yml"), .. args], env, TimeSpan.FromSeconds(120));
        try
        {
            Ok(Compose("up", "-d"));
            Assert.Equal("0", Ok(f.Docker("wait", project + "_client_1")).Out.Trim());
            Assert.Equal("built page\nhello-compose\n", Curl($"http://127.0.0.1:{port}/"));
            string logs = Ok(Compose("logs", "--no-color")).Out;
            Assert.Contains("web is up", logs);
            Assert.Contains("hello-compose", logs); // the client printed the page it fetched by service name
            var ps = Ok(Compose("ps")).Out;
            Assert.Contains(project + "_web_1", ps);
            Assert.Contains("(healthy)", ps);
            // One-off commands: exec in the running service, and run of a new container on the stack's network (-T: no
            // terminal here for compose's own pty handling).
            Assert.Equal("from-exec", Ok(Compose("exec", "-T", "web", "echo", "from-exec")).Out.Trim());
            Assert.Equal("by-name", Ok(Compose("run", "--rm", "-T", "client", "sh", "-c", "wget -qO- http://web/ >/dev/null && echo by-name")).Out.Trim());
            Assert.Contains(project + "_data", Ok(f.Docker("volume", "ls", "--format", "{{.Name}}")).Out);
            Assert.Contains(project + "_default", Ok(f.Docker("network", "ls", "--format", "{{.Name}}")).Out);
            Assert.Equal(fixedIp, Ok(f.Docker("inspect", "-f", $"{{{{(index .NetworkSettings.Networks \"{project}_back\").IPAddress}}}}", project + "_web_1")).Out.Trim());

            // A changed environment recreates the service (stop the old container, create the new one, remove the old):
            // the fixed address moves to the new container, the named volume stays.
            env["GREETING"] = "changed";
            Ok(Compose("up", "-d", "web"));
            Assert.Equal("built page\nchanged\n", Curl($"http://127.0.0.1:{port}/"));
            Assert.Equal(fixedIp, Ok(f.Docker("inspect", "-f", $"{{{{(index .NetworkSettings.Networks \"{project}_back\").IPAddress}}}}", project + "_web_1")).Out.Trim());

            Ok(Compose("down", "-v", "--rmi", "local"));
            string label = "label=com.docker.compose.project=" + project;
            Assert.Empty(Ok(f.Docker("ps", "-aq", "--filter", label)).OutLines);
            Assert.Empty(Ok(f.Docker("network", "ls", "-q", "--filter", label)).OutLines);
            Assert.Empty(Ok(f.Docker("network", "ls", "-q", "--filter", "name=" + project)).OutLines);
            Assert.Empty(Ok(f.Docker("volume", "ls", "-q", "--filter", label)).OutLines);
            Assert.DoesNotContain(project, Ok(f.Docker("images", "--format", "{{.Repository}}")).Out);
        }
        finally
        {
            Compose("down", "-v", "--rmi", "local");
        }
    }
}
