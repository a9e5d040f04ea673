# A custom module used only by authz_test.rego: it denies when the request
# carries an X-Test-Deny header, allows when it carries X-Test-Allow, and sets
# a flag from X-Test-Flag. It also proves custom modules cannot see input.acl.
package vigil.custom.fixture

deny contains sprintf("test deny: %s", [input.request.headers["X-Test-Deny"]]) if input.request.headers["X-Test-Deny"]

deny contains "custom modules must not see input.acl" if input.acl

allow if input.request.headers["X-Test-Allow"] == "yes"

flags["fixture"] := input.request.headers["X-Test-Flag"] if input.request.headers["X-Test-Flag"]
