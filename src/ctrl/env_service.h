// EnvService: a project's environment variables and secrets (app_env.h). A secret's value goes
// in sealed and never comes out through this API.
#pragma once

#include "ctrl/services.h"

namespace slipway::ctrl {

void RegisterEnvService(net::ConnectRouter& router, const ServiceDeps& deps);

}  // namespace slipway::ctrl
