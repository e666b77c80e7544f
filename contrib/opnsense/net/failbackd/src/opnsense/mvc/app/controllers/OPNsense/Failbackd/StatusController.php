<?php

/*
 * Copyright (C) 2026 failbackd developers
 * All rights reserved. BSD-2-Clause.
 */

namespace OPNsense\Failbackd;

/**
 * Services > failbackd > Status (/ui/failbackd/status), with Hold and Release; the pattern of
 * sysutils/apcupsd's StatusController.
 */
class StatusController extends \OPNsense\Base\IndexController
{
    public function indexAction()
    {
        $this->view->pick('OPNsense/Failbackd/status');
    }
}
