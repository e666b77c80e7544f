<?php

/*
 * Copyright (C) 2026 failbackd developers
 * All rights reserved. BSD-2-Clause.
 */

namespace OPNsense\Failbackd;

/**
 * Services > failbackd > Settings (index) and Status pages.
 */
class IndexController extends \OPNsense\Base\IndexController
{
    public function indexAction()
    {
        $this->view->generalForm = $this->getForm('general');
        $this->view->formDialogProbe = $this->getForm('dialogProbe');
        $this->view->pick('OPNsense/Failbackd/index');
    }

    public function statusAction()
    {
        $this->view->pick('OPNsense/Failbackd/status');
    }
}
