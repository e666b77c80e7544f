<?php

/*
 * Copyright (C) 2026 failbackd developers
 * All rights reserved. BSD-2-Clause.
 */

namespace OPNsense\Failbackd;

/**
 * Services > failbackd > Settings (/ui/failbackd). The Status page has its own controller:
 * core's router reads /ui/failbackd/status as controller "status" (StatusController).
 */
class IndexController extends \OPNsense\Base\IndexController
{
    public function indexAction()
    {
        $this->view->generalForm = $this->getForm('general');
        $this->view->formDialogProbe = $this->getForm('dialogProbe');
        $this->view->pick('OPNsense/Failbackd/index');
    }
}
