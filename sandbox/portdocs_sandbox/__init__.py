"""portdocs' local tooling: the sandbox, the Telnyx emulator, the local Lambda runtime and the
operator CLI. Development only: none of this ships in the Lambda layer."""
