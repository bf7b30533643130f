#!/usr/bin/python3
"""Creates a directory of App Mesh JSON (objects or arrays of them, as
`aws appmesh create-* --cli-input-json` takes them) through an agent's App
Mesh API with the AWS CLI; in cluster mode the resources land in etcd and
every node serves them.

    load-model.py [DIR] [--endpoint-url URL]
    (default: /srv/nodemesh/examples/cluster/mesh, http://127.0.0.1:15000)

A resource may reference one that comes later (a virtual node's backend, a
route's target), so creation goes in rounds until nothing more succeeds.
One that already exists (ConflictException) counts as created, so the
script can run again.
"""
import argparse
import json
import pathlib
import subprocess
import sys


def command(resource):
    """The `aws appmesh` command that creates this resource."""
    if "routeName" in resource:
        return "create-route"
    if "gatewayRouteName" in resource:
        return "create-gateway-route"
    for key, cmd in (("virtualNodeName", "create-virtual-node"),
                     ("virtualRouterName", "create-virtual-router"),
                     ("virtualServiceName", "create-virtual-service"),
                     ("virtualGatewayName", "create-virtual-gateway")):
        if key in resource:
            return cmd
    return "create-mesh"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", nargs="?",
                        default="/srv/nodemesh/examples/cluster/mesh")
    parser.add_argument("--endpoint-url", default="http://127.0.0.1:15000")
    args = parser.parse_args()

    pending = []
    for path in sorted(pathlib.Path(args.dir).glob("*.json")):
        doc = json.loads(path.read_text())
        pending += doc if isinstance(doc, list) else [doc]

    while pending:
        failed, errors = [], []
        for resource in pending:
            cmd = command(resource)
            run = subprocess.run(
                ["aws", "appmesh", cmd, "--cli-input-json",
                 json.dumps(resource), "--endpoint-url", args.endpoint_url],
                capture_output=True, text=True)
            if run.returncode == 0 or "ConflictException" in run.stderr:
                print(f"{cmd}: {json.dumps(resource)[:70]}...")
            else:
                failed.append(resource)
                errors.append(f"{cmd}: {run.stderr.strip()}")
        if len(failed) == len(pending):
            sys.exit("load-model: nothing more could be created:\n" +
                     "\n".join(errors))
        pending = failed


if __name__ == "__main__":
    main()
